"""Step time and peak memory of every `mirkit tune` method on one encoder, on equal terms.

Each method's model is built exactly as `mirkit tune` builds it (same defaults, same head), then
trained for ``--steps`` timed optimizer steps after ``--warmup-steps`` untimed ones, on a fixed
batch of synthetic audio (``--batch-size`` x ``--crop-s``; step cost does not depend on content).
Timing synchronises the device around every step; memory is the peak allocated on the GPU
(process peak RSS on CPU). Same autocast (bf16 on CUDA), AdamW and clipping as the tune loop.

Prints a line per method, then one JSON line last:
    python benchmarks/tune_cost.py --encoder random:mert-v1-95m --device cuda
    python benchmarks/tune_cost.py --encoder musicnn-mtt --steps 5 --warmup-steps 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time

import torch

from mirkit.adapt.fit import task_losses
from mirkit.tune.config import TuneConfig
from mirkit.tune.inference import autocast, set_mode
from mirkit.tune.loop import build_optimizer
from mirkit.tune.methods import METHODS, get_method
from mirkit.tune.run import build_model, count_parameters


def measure(method: str, *, encoder: str, weights_dir: str | None, device: str, batch_size: int, crop_s: float, steps: int,
            warmup_steps: int, classes: int) -> dict[str, object]:
    config = TuneConfig(method=method, batch_size=batch_size, crop_s=crop_s)
    model = build_model(encoder=encoder, config=config, output_dim=classes, weights_dir=weights_dir,
                        device=device)
    counts = count_parameters(model, method)
    dev = torch.device(device)
    optimizer = build_optimizer(model, config)
    generator = torch.Generator().manual_seed(0)
    samples = int(round(crop_s * model.encoder.spec.sample_rate))
    wave = (torch.randn(batch_size, samples, generator=generator) * 0.1).to(dev)
    lengths = torch.full((batch_size,), samples, dtype=torch.long, device=dev)
    y = torch.randint(0, classes, (batch_size,), generator=generator).to(dev)
    set_mode(model, True, get_method(method))
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for step in range(warmup_steps + steps):
        start = time.perf_counter()
        with autocast(dev):
            out = model(wave, lengths).float()
        loss = task_losses("multiclass", out, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if step >= warmup_steps:
            times.append(time.perf_counter() - start)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / 2 ** 20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del model, optimizer
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return {"method": method, "step_s_median": round(statistics.median(times), 4),
            "step_s_mean": round(statistics.fmean(times), 4), "peak_memory_mib": round(peak, 1),
            "trainable": counts["trainable"], "trainable_percent_of_encoder": counts["trainable_percent_of_encoder"],
            "loss_finite": bool(torch.isfinite(loss))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="random:mert-v1-95m")
    parser.add_argument("--weights", default=None, help="encoder weights folder")
    parser.add_argument("--methods", default=",".join(m for m in METHODS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop-s", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--classes", type=int, default=24)
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    rows = []
    for method in methods:
        row = measure(method, encoder=args.encoder, weights_dir=args.weights, device=args.device, batch_size=args.batch_size, crop_s=args.crop_s,
                      steps=args.steps, warmup_steps=args.warmup_steps, classes=args.classes)
        rows.append(row)
        print(f"{method:9s} {row['step_s_median'] * 1000:8.1f} ms/step (median of {args.steps})  "
              f"peak {row['peak_memory_mib']:8.0f} MiB  trainable {row['trainable']:,}"
              + (f" ({row['trainable_percent_of_encoder']}% of the encoder)"
                 if row["trainable_percent_of_encoder"] is not None else " (no pretrained encoder)"), flush=True)
    machine = f"{platform.machine()} {os.cpu_count()} cpu, torch {torch.__version__}"
    if args.device.startswith("cuda"):
        machine += f", {torch.cuda.get_device_name(args.device)}"
    print(json.dumps({"benchmark": "tune_cost", "encoder": args.encoder, "device": args.device,
                      "batch_size": args.batch_size, "crop_s": args.crop_s, "steps": args.steps,
                      "autocast": "bf16" if args.device.startswith("cuda") else "off (fp32)",
                      "memory": "GPU peak allocated" if args.device.startswith("cuda") else "process peak RSS",
                      "machine": machine, "methods": rows}))


if __name__ == "__main__":
    main()
