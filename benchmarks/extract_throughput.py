"""Extraction throughput: a naive loop vs ``mirkit extract`` on the same generated files.

(a) naive: one file at a time, whole-file decode + resample, fp32, batch 1, mean-pool, np.save.
(b) mirkit extract: worker-process decoding, batched windows, atomic store (bf16 autocast on GPU).
(c) the network alone on a pre-made batch of default-length windows, run the way (b) ran it (the
runtime (b) used on the CPU, e.g. ONNX Runtime; bf16 autocast on CUDA): the ceiling, measured in
the same run on every device, so (b)/(c) says how much of the ceiling the pipeline reaches.

(b) and (c) alternate for ``--rounds`` rounds (default 3) and their medians are compared: on a
shared VM either one alone varies by 10-20 % from minute to minute. The JSON also says where (b)'s
wall time went (decoding, i.e. waiting for windows; the network; writing; the rest), how fast
decoding runs by itself (d: hash, decode, mix down, resample, window, single-threaded), and the
batch shapes (b) fed the network.

Prints progress, then one JSON line last. Example:
    python benchmarks/extract_throughput.py --encoder musicnn-mtt --files 40 --duration-s 30
    python benchmarks/extract_throughput.py --encoder random:mert-v1-95m --device cuda --files 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch


def _write_file(args: tuple[Path, int, float, int]) -> None:
    path, seed, duration_s, sample_rate = args
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * sample_rate)) / sample_rate
    f0 = 110 * 2 ** (rng.integers(0, 36) / 12)
    y = sum(0.5 ** k * np.sin(2 * np.pi * f0 * (k + 1) * t) for k in range(5)) * 0.2
    y = y + rng.standard_normal(len(t)) * 0.02
    stereo = np.stack([y, y * 0.8], axis=1).astype(np.float32)
    sf.write(path, stereo, sample_rate, subtype="PCM_16")


def make_files(folder: Path, *, count: int, duration_s: float, sample_rate: int = 44100) -> float:
    """Stereo 44.1 kHz WAVs of harmonic tones + noise (different content per file), written in parallel."""
    from concurrent.futures import ProcessPoolExecutor

    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(folder / f"f{i:04d}.wav", i, duration_s, sample_rate) for i in range(count)]
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(_write_file, jobs, chunksize=4))
    return count * duration_s


def naive(folder: Path, out: Path, *, encoder, device: str) -> float:
    from mirkit.audio import load

    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for path in sorted(folder.glob("*.wav")):
        y, _ = load(path, sample_rate=encoder.spec.sample_rate)
        with torch.inference_mode():
            result = encoder(torch.from_numpy(y)[None].to(device))
        pooled = {f"l{k}": h[0, : int(result.lengths[k][0])].float().mean(0).cpu().numpy() for k, h in result.hidden.items()}
        np.savez(out / f"{path.stem}.npz", **pooled)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def model_only(encoder, *, device: str, batch_size: int, window_s: float, min_s: float = 5.0,
               max_repeats: int = 10) -> float:
    """Audio-seconds per second of the bare forward pass (bf16 on CUDA; on the CPU whatever runtime the
    encoder uses now): one warm-up pass, then passes until ``min_s`` seconds or ``max_repeats`` passes."""
    x = torch.randn(batch_size, int(window_s * encoder.spec.sample_rate), device=device) * 0.1
    cuda = device.startswith("cuda")
    with torch.inference_mode(), torch.autocast(device_type="cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda):
        encoder(x)
        if cuda:
            torch.cuda.synchronize()
        start, repeats = time.perf_counter(), 0
        while repeats < max_repeats and (repeats < 1 or time.perf_counter() - start < min_s):
            encoder(x)
            repeats += 1
        if cuda:
            torch.cuda.synchronize()
    return repeats * batch_size * window_s / (time.perf_counter() - start)


def first_files(audio: Path, folder: Path, count: int) -> Path:
    """A folder holding copies of the first ``count`` files of ``audio`` (the naive loop's input)."""
    folder.mkdir(exist_ok=True)
    for path in sorted(audio.glob("*.wav"))[:count]:
        shutil.copy(path, folder / path.name)
    return folder


class record_shapes:
    """Counts the ``(rows, samples)`` shapes the encoder is called with while ``active``."""

    def __init__(self, encoder) -> None:
        from collections import Counter

        self.counts: Counter = Counter()
        self.active = True
        forward = encoder.forward

        def counted(waves, *args, **kwargs):
            if self.active:
                self.counts[tuple(waves.shape)] += 1
            return forward(waves, *args, **kwargs)

        encoder.forward = counted

    def summary(self) -> list[str]:
        return [f"{count} x {rows}x{samples}" for (rows, samples), count in sorted(self.counts.items())]


def decode_only(folder: Path, encoder, config) -> float:
    """Audio-seconds per second of the input side alone (hash, decode, resample, window), one thread."""
    from mirkit.features.extract import make_recipe
    from mirkit.features.loader import Job, WindowStream
    from mirkit.features.store import FeatureStore

    paths = sorted(str(p) for p in folder.glob("*.wav"))
    with tempfile.TemporaryDirectory() as store:
        items = FeatureStore(store).recipe(make_recipe(config, encoder))
        stream = WindowStream([Job(i, p) for i, p in enumerate(paths)], items.recipe, items)
        start = time.perf_counter()
        samples = sum(len(m.wave) for m in stream if hasattr(m, "wave"))
        return samples / encoder.spec.sample_rate / (time.perf_counter() - start)


def alternate(audio: Path, work: Path, *, encoder, config, rounds: int, files: int, audio_s: float, rows: int,
              shapes: record_shapes) -> list[dict]:
    """(b) then (c), ``rounds`` times; the batch shapes are those of the first (b)."""
    from mirkit.features.extract import extract

    cuda = config.device.startswith("cuda")
    found = []
    for round_ in range(rounds):
        store = work / f"store{round_}"
        start = time.perf_counter()
        report = extract(audio, store=store, config=config, encoder=encoder, progress=False)
        extract_s = time.perf_counter() - start
        assert report.computed == files, report.summary()
        shutil.rmtree(store, ignore_errors=True)
        shapes.active = False
        # (c) after (b): on the CPU the encoder now runs the way extract ran it (extract picked the runtime)
        ceiling = model_only(encoder, device=config.device, batch_size=rows, window_s=encoder.spec.default_window_s)
        found.append({"extract": audio_s / extract_s, "model_only": ceiling, "timings": report.timings,
                      "wall_s": extract_s})
        print(f"round {round_ + 1}: (b) mirkit extract {audio_s / extract_s:.1f} audio-s/s, (c) network alone "
              f"{ceiling:.1f} audio-s/s ({encoder.runtime}{', bf16' if cuda else ', fp32'})", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="musicnn-mtt")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=None, help="(b)'s windows per pass (default: extract's)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--runtime", default="auto", choices=("auto", "torch", "onnxruntime"),
                        help="what runs the network in (b) (the naive loop always uses PyTorch)")
    parser.add_argument("--naive-files", type=int, default=None, help="run the naive loop on the first N files only")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of (b) and (c); medians are reported")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    from mirkit.encoders import load_encoder
    from mirkit.features.extract import ExtractConfig
    from mirkit.features.loader import default_workers

    work = Path(args.workdir or tempfile.mkdtemp(prefix="mirkit-bench-"))
    audio = work / "audio"
    total_audio_s = make_files(audio, count=args.files, duration_s=args.duration_s)
    encoder = load_encoder(args.encoder, weights_dir=args.weights, device=args.device)
    print(f"{args.files} files x {args.duration_s:g} s, encoder {args.encoder} on {args.device}", flush=True)

    naive_dir, naive_audio_s = audio, total_audio_s
    if args.naive_files:
        naive_dir, naive_audio_s = first_files(audio, work / "naive-audio", args.naive_files), args.naive_files * args.duration_s
    naive_s = naive(naive_dir, work / "naive-out", encoder=encoder, device=args.device)
    print(f"(a) naive loop: {naive_audio_s / naive_s:.1f} audio-s/s", flush=True)

    config = ExtractConfig(encoder=args.encoder, weights_dir=args.weights, device=args.device,
                           batch_size=args.batch_size, num_workers=args.workers, runtime=args.runtime)
    shapes = record_shapes(encoder)
    cuda = args.device.startswith("cuda")
    rows = config.rows if cuda else 2  # a CPU pass over 8 long windows takes minutes
    rounds = alternate(audio, work, encoder=encoder, config=config, rounds=args.rounds, files=args.files,
                       audio_s=total_audio_s, rows=rows, shapes=shapes)
    median = sorted(rounds, key=lambda r: r["extract"])[len(rounds) // 2]
    extract_s, report_timings = median["wall_s"], median["timings"]
    ceiling = statistics.median(r["model_only"] for r in rounds)
    decode = decode_only(audio, encoder, config)
    print(f"(d) decoding alone (one thread): {decode:.1f} audio-s/s", flush=True)

    result = {
        "benchmark": "extract_throughput", "encoder": args.encoder, "device": args.device,
        "files": args.files, "duration_s": args.duration_s, "batch_size": config.rows,
        "runtime": encoder.runtime,
        "naive_audio_s_per_s": round(naive_audio_s / naive_s, 2),
        "extract_audio_s_per_s": round(total_audio_s / extract_s, 2),
        "speedup": round((total_audio_s / extract_s) / (naive_audio_s / naive_s), 2),
        "rounds": [{"extract": round(r["extract"], 1), "model_only": round(r["model_only"], 1)} for r in rounds],
        "extract_timings_s": {k: round(v, 2) for k, v in report_timings.items()},
        "extract_shares": {k.removesuffix("_s"): round(v / extract_s, 3) for k, v in report_timings.items() if v > 0},
        "batch_shapes": shapes.summary(),
        "decode_only_audio_s_per_s": round(decode, 1),
        "workers": config.num_workers if config.num_workers is not None else default_workers(args.device),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, torch {torch.__version__}, "
                   f"torch threads {torch.get_num_threads()}"
                   + (f", {torch.cuda.get_device_name()}" if args.device.startswith("cuda") else ""),
    }
    result["model_only_audio_s_per_s"] = round(ceiling, 1)
    result["model_only"] = {"runtime": encoder.runtime, "precision": "bf16" if cuda else "fp32", "batch_size": rows,
                            "window_s": round(encoder.spec.default_window_s, 3)}
    result["extract_vs_model_only"] = round(result["extract_audio_s_per_s"] / ceiling, 3)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
