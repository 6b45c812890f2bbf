"""How long the full `mirkit tune` method x task table takes on this machine, from measured step times.

Reads the cost records of small real runs (``scripts/tune_table.sh`` on any suite: each result has
seconds per optimizer step for its encoder and method) and the manifests of the suite the table is
meant for (training clips, validation and test audio), and estimates, per (task, encoder, method):

    epochs x (ceil(train clips / batch) x step_s  +  valid audio / crop x forward_s)  +  test audio / crop x forward_s

times the number of seeds, where ``forward_s`` (one crop through the frozen encoder) is the
``probe`` run's step time divided by its batch size. Epoch counts are not known in advance (early
stopping), so the estimate is printed for several. JSON line last.

    python benchmarks/tune_estimate.py --runs /tmp/tune-demo --suite /tmp/std --seeds 3
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path


def suite_sizes(suite: Path, tasks: list[str]) -> dict[str, dict[str, float]]:
    sizes: dict[str, dict[str, float]] = {}
    for task in tasks:
        counts: dict[str, float] = defaultdict(float)
        for line in (suite / task / "manifest.jsonl").read_text().splitlines():
            row = json.loads(line)
            counts[f"{row['split']}_clips"] += 1
            counts[f"{row['split']}_audio_s"] += float(row.get("duration_s") or 0.0)
        sizes[task] = dict(counts)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", required=True, help="a folder of tune runs with measured costs")
    parser.add_argument("--suite", required=True, help="the suite the full table is for (e.g. standard)")
    parser.add_argument("--tasks", default="key,tempo,tagging,instrument")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", default="10,15,30")
    args = parser.parse_args()

    measured: dict[tuple[str, str], dict[str, float]] = {}
    for path in sorted(Path(args.runs).glob("*/results/*.json")):
        result = json.loads(path.read_text())
        cost = result.get("cost") or {}
        if cost.get("step_s"):
            config = json.loads((path.parent.parent / "tune.json").read_text())["config"]
            key = (str(result.get("base_encoder") or result["encoder"]), str(result["method"]))
            measured[key] = {"step_s": float(cost["step_s"]),
                             "batch": float(config["batch_size"]) * float(config.get("accumulate") or 1),
                             "crop_s": float(config["crop_s"])}
    if not measured:
        raise SystemExit(f"no tune results with costs under {args.runs}")
    tasks = args.tasks.split(",")
    sizes = suite_sizes(Path(args.suite), tasks)
    forward = {enc: m["step_s"] / m["batch"] for (enc, method), m in measured.items() if method in ("probe", "scratch")}
    rows = []
    for (encoder, method), m in sorted(measured.items()):
        fwd = forward.get(encoder, m["step_s"] / m["batch"] / 3)  # no probe run: about a third of a train step
        for task in tasks:
            size = sizes[task]
            steps = math.ceil(size.get("train_clips", 0) / m["batch"])
            train_epoch_s = steps * m["step_s"]
            valid_s = size.get("valid_audio_s", 0) / m["crop_s"] * fwd
            test_s = size.get("test_audio_s", 0) / m["crop_s"] * fwd
            rows.append({"encoder": encoder, "method": method, "task": task, "step_s": m["step_s"],
                         "steps_per_epoch": steps, "epoch_s": round(train_epoch_s + valid_s, 1), "test_s": round(test_s, 1)})
    totals = {}
    for epochs in (int(e) for e in args.epochs.split(",")):
        seconds = sum(args.seeds * (epochs * r["epoch_s"] + r["test_s"]) for r in rows)
        totals[f"cpu_hours_{epochs}_epochs"] = round(seconds / 3600, 1)
    for r in rows:
        print(f"{r['encoder']:>14} {r['method']:>9} {r['task']:>10}: {r['steps_per_epoch']} steps x {r['step_s']:.2f} s "
              f"-> {r['epoch_s'] / 60:.1f} min per epoch with validation")
    result = {"benchmark": "tune_estimate", "runs": args.runs, "suite": args.suite, "tasks": tasks, "seeds": args.seeds,
              "pairs": sorted({f"{r['encoder']}/{r['method']}" for r in rows}), **totals}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
