"""Probe sweep speed: layers x seeds linear probes on N cached clips (issue #4 target: 13 layers x
3 seeds on 10k clips in <= 60 s on 2 CPU cores).

Features are synthetic (a 13-layer, 768-d stack where class information grows with depth), so the
script measures the probe protocol itself (lr grid, early stopping, seeds), not extraction.
Trains the sweep the way ``mirkit probe``/``mirkit bench`` do (:func:`mirkit.adapt.fit.fit_probes`).
Prints per-layer results, then one JSON line last.

    python benchmarks/probe_speed.py --clips 10000 --layers 13 --seeds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=10000)
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--model", default="linear")
    args = parser.parse_args()

    from mirkit.adapt.config import ProbeConfig
    from mirkit.adapt.fit import ProbeJob, fit_probes

    rng = np.random.default_rng(0)
    labels = rng.integers(0, args.classes, args.clips)
    centres = rng.normal(0, 1, (args.classes, args.dim))
    n_train, n_valid = int(0.7 * args.clips), int(0.85 * args.clips)
    splits = {"train": slice(0, n_train), "valid": slice(n_train, n_valid), "test": slice(n_valid, None)}
    jobs = []
    for layer in range(args.layers):
        signal = 0.15 * (layer + 1) / args.layers
        x = (signal * centres[labels] + rng.normal(0, 1, (args.clips, args.dim))).astype(np.float32)
        jobs.append(ProbeJob(f"layer{layer}", [layer], {s: x[sl] for s, sl in splits.items()}))
    names = {s: [str(v) for v in labels[sl]] for s, sl in splits.items()}
    print(f"{args.layers} layers x {args.seeds} seeds x 3 learning rates on {args.clips} clips, {args.dim}-d ...",
          flush=True)
    start = time.perf_counter()
    fits = fit_probes(jobs, names, kind="multiclass", config=ProbeConfig(model=args.model), seeds=range(args.seeds))
    elapsed = time.perf_counter() - start
    for layer in range(args.layers):
        mine = [f.result for f in fits if f.job == f"layer{layer}"]
        print(f"layer {layer}: test accuracy {np.mean([r.test['accuracy'] for r in mine]):.3f}, "
              f"best epochs {[r.best_epoch for r in mine]}")
    print(json.dumps({"benchmark": "probe_speed", "clips": args.clips, "layers": args.layers, "seeds": args.seeds,
                      "dim": args.dim, "model": args.model, "wall_s": round(elapsed, 1), "target_s": 60,
                      "machine": f"{platform.machine()} {os.cpu_count()} cpu, torch {torch.__version__}"}))


if __name__ == "__main__":
    main()
