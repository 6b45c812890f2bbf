"""Pretraining throughput: audio-seconds per second of ``mirkit pretrain`` training steps, per preset,
and the model FLOPs utilisation (MFU) against a matmul peak measured in the same run.

Each preset trains on random waveforms (the data loader is not part of this figure; the loader's
own speed is what ``--workers`` buys) with BEST-RQ targets, the CQT loss on precomputed zeros,
masking and in-batch mixing, exactly the step ``mirkit pretrain`` runs. FLOPs of one step come from
``torch.utils.flop_counter`` (forward + backward); the peak is a large matmul in the same precision
(bf16 on CUDA, fp32 on CPU). Prints a line per preset and one JSON line last.

    python benchmarks/pretrain_throughput.py [--presets mel/tiny,mel/small,mert/95m] [--device cuda] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch


def matmul_peak_flops(device: torch.device, *, size: int = 2048, repeats: int = 10) -> float:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * size ** 3 * repeats / (time.perf_counter() - start)


def measure(arch: str, preset: str, *, device: torch.device, batch_size: int, crop_s: float, steps: int,
            warmup: int) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from mirkit.pretrain.config import PretrainConfig
    from mirkit.pretrain.masking import span_mask
    from mirkit.pretrain.mixing import mix_in_batch
    from mirkit.pretrain.run import build_model
    from mirkit.pretrain.teachers import CQT_BINS

    config = PretrainConfig(arch=arch, preset=preset, batch_size=batch_size, crop_s=crop_s)
    model = build_model(config).to(device)
    backbone = model.backbone
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    samples = int(crop_s * backbone.sample_rate)
    generator = torch.Generator().manual_seed(0)
    waves = (torch.randn(batch_size, samples, generator=generator) * 0.1).to(device)
    lengths = torch.full((batch_size,), samples, device=device)

    def step() -> None:
        with torch.no_grad():
            stacked, valid = backbone.frames.tokens(waves, lengths)
            codes = model.quantizer(stacked)
        mask = span_mask(valid.cpu(), codes.shape[1], prob=0.8, span=5, generator=generator).to(device)
        mixed, _ = mix_in_batch(waves, lengths, sample_rate=backbone.sample_rate, generator=generator)
        cqt = torch.zeros(batch_size, codes.shape[1], CQT_BINS, device=device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss, _ = model(mixed, lengths, mask, codes, cqt, cqt_weight=1.0)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.train()
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    step_s = (time.perf_counter() - start) / steps
    return {"preset": f"{arch}/{preset}", "parameters": sum(p.numel() for p in backbone.parameters() if p.requires_grad),
            "step_s": round(step_s, 4), "audio_s_per_s": round(batch_size * crop_s / step_s, 1),
            "flops_per_step": flops, "achieved_tflops": round(flops / step_s / 1e12, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="mel/tiny,mel/small,mel/base,mert/small",
                        help="comma list of ARCH/PRESET (mert/95m is MERT-v1-95M's shape: the MFU figure on a GPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop-s", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    peak = matmul_peak_flops(device)
    rows = []
    for item in args.presets.split(","):
        arch, _, preset = item.strip().partition("/")
        row = measure(arch, preset, device=device, batch_size=args.batch_size, crop_s=args.crop_s, steps=args.steps,
                      warmup=args.warmup)
        row["mfu"] = round(row["achieved_tflops"] * 1e12 / peak, 3)
        rows.append(row)
        print(f"{row['preset']:>6}: {row['parameters'] / 1e6:.2f} M params, {row['step_s']:.3f} s/step, "
              f"{row['audio_s_per_s']} audio-s/s, {row['achieved_tflops']} TFLOP/s, MFU {row['mfu']}", flush=True)
    print(json.dumps({"benchmark": "pretrain_throughput", "device": args.device, "batch_size": args.batch_size,
                      "crop_s": args.crop_s, "matmul_peak_tflops": round(peak / 1e12, 3), "presets": rows,
                      "machine": f"{platform.machine()} {os.cpu_count()} cpu, torch {torch.__version__}, "
                                 f"{torch.get_num_threads()} threads"
                                 + (f", {torch.cuda.get_device_name()}" if device.type == "cuda" else "")}))


if __name__ == "__main__":
    main()
