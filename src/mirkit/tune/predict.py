"""``mirkit predict`` for tune runs: the tuned model (base encoder + method weights, LoRA merged)
on new audio, averaging non-overlapping windows as in evaluation (time-resolved tasks: decoding the
frames of windows covering each file). Bad files are skipped and reported."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from mirkit.adapt.predict import write_predictions
from mirkit.adapt.timed.predict import write_decoded
from mirkit.audio import load
from mirkit.audio.loudness import apply_loudness
from mirkit.errors import AudioError, ConfigError
from mirkit.features.inputs import scan_inputs
from mirkit.kinds import FrameKind
from mirkit.tune.data import ClipSet
from mirkit.tune.inference import label_units, predict
from mirkit.tune.run import load_tuned
from mirkit.tune.timed_loop import activations, frame_outputs


def predict_tuned(*, run_dir: str | Path, source: str | Path, out_path: str | Path, device: str = "cpu",
                  top_k: int = 5, progress: bool = True) -> tuple[int, list[tuple[str, str]]]:
    """Write one prediction per audio file; returns ``(rows written, [(path, reason) skipped])``.

    A run on a time-resolved task writes into the folder ``out_path``, as ``mirkit predict`` does for
    frame-level probes: per file its beats and downbeats (``.beats.txt``, ``.downbeats.txt``), chords
    (``.lab``) or notes (``.mid``), and ``predictions.jsonl``.
    """
    out_path = Path(out_path)
    model, targets, meta = load_tuned(run_dir, device=device, merge=True)
    timed = isinstance(targets, FrameKind)
    if not timed and out_path.suffix not in (".jsonl", ".csv"):
        raise ConfigError(f"--out {str(out_path)!r} must end in .jsonl or .csv.")
    if timed and out_path.suffix in (".jsonl", ".csv"):
        raise ConfigError(f"--out {str(out_path)!r}: a {meta['kind']} run writes a folder (per file beats, chords or "
                          "notes, and predictions.jsonl); pass a folder name.")
    spec = model.encoder.spec
    config = meta["config"]
    waves, kept, skipped = _decode_inputs(source, sample_rate=spec.sample_rate, min_duration_s=spec.min_duration_s,
                                          loudness=str(config.get("loudness") or "none"), progress=progress)
    window = int(round(float(config["crop_s"]) * spec.sample_rate))  # type: ignore[arg-type]
    facts = {"run": str(run_dir), "method": meta["method"], "encoder": meta["name"], "seed": meta["seed"],
             "task": meta["task"]}
    if timed:
        outputs = frame_outputs(model, waves, window_samples=window, batch_size=int(config["batch_size"]),  # type: ignore[arg-type]
                                device=torch.device(device), method=str(meta["method"]))
        rows = [{"path": path, **targets.to_row(targets.decode(activations(targets, logits), times,
                                                                  rate_hz=model.frame_rate_hz, context=meta))}
                for path, (logits, times) in zip(kept, outputs)]
        write_decoded(out_path, rows, facts, targets)
        return len(rows), skipped
    rows = []
    if kept:
        outputs = predict(model, ClipSet(waves, [None] * len(waves), kept), window_samples=window,
                          min_samples=max(1, math.ceil(spec.min_duration_s * spec.sample_rate)),
                          batch_size=int(config["batch_size"]), device=torch.device(device),  # type: ignore[arg-type]
                          method=str(meta["method"]))
        outputs = label_units(outputs, model, targets)  # type: ignore[arg-type]  # clip-level: Targets
        for path, output, value in zip(kept, outputs, targets.decode(outputs)):
            rows.append(targets.prediction_row(path, output, value, top_k=top_k))
    write_predictions(out_path, rows, facts)
    return len(rows), skipped


def _decode_inputs(source: str | Path, *, sample_rate: int, min_duration_s: float, loudness: str,
                   progress: bool) -> tuple[list[np.ndarray], list[str], list[tuple[str, str]]]:
    """The audio files of ``source`` decoded at ``sample_rate`` and levelled by the run's ``loudness`` policy:
    ``(waves, their paths, [(path, reason) skipped])``."""
    from tqdm import tqdm

    paths, not_audio = scan_inputs(source)
    skipped = [(p, message) for p, _, message in not_audio]
    waves, kept = [], []
    for path in tqdm(paths, desc="decode", unit="file", disable=not progress or None):
        try:
            wave, _ = load(path, sample_rate=sample_rate, min_duration_s=min_duration_s)
        except AudioError as exc:
            skipped.append((path, f"{type(exc).__name__}: {exc}"))
            continue
        waves.append(apply_loudness(wave, sample_rate=sample_rate, policy=loudness))
        kept.append(path)
    return waves, kept, skipped
