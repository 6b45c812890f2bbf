"""Does more pretraining help? Probe saved checkpoints of one `mirkit pretrain` run on suite tasks (issue #18).

Every ``RUN/checkpoints/step-N`` folder (or those of ``--steps``) is an encoder; each is probed like the
ablations (`mirkit probe`, all layers, linear, ``--seeds``; the best layer *chosen on validation*, its test
mean +- std), beside the run's random-init twin (step 0). Resumable: probes and features are kept under
``--out``. Prints a markdown table and a JSON line last.

    python benchmarks/pretrain_curve.py --run runs/pt-clean-small --suite runs/suite-quick --out runs/curve \\
        [--steps 0,1000,2000,4000,8000,16000] [--tasks key,genre,instrument,pitch,tagging,tempo] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from pretrain_ablations import print_table, probe_scores  # noqa: E402


def checkpoint(run: Path, step: int) -> str:
    """The encoder name of ``run`` at ``step`` (0: its random-init twin)."""
    folder = run / "checkpoints" / f"step-{step:07d}"
    if step == 0:
        return "random:" + str(run / "final")
    if not folder.is_dir():
        saved = sorted(p.name for p in (run / "checkpoints").glob("step-*"))
        raise SystemExit(f"{folder} is missing; {run} has {', '.join(saved[:3])} ... {', '.join(saved[-2:])}")
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="a finished `mirkit pretrain` run folder")
    parser.add_argument("--suite", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--steps", default="0,1000,2000,4000,8000,16000")
    parser.add_argument("--tasks", default="key,genre,instrument,pitch,tagging,tempo")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    rows = []
    for step in (int(s) for s in args.steps.split(",")):
        encoder = checkpoint(args.run, step)
        scores = probe_scores(encoder, suite=args.suite, tasks=tasks, seeds=args.seeds,
                              out=args.out / "probes" / f"step-{step:07d}", store=args.out / "features",
                              progress=not args.no_progress)
        rows.append({"step": step, "encoder": encoder, "scores": scores})
        print(f"step {step:>6} " + "  ".join(f"{t} {s['mean']:.3f}+-{s['std']:.3f}" for t, s in scores.items()),
              flush=True)
    print_table(rows, key="step", tasks=tasks)
    print(json.dumps({"benchmark": "pretrain_curve", "run": str(args.run), "suite": str(args.suite), "seeds": args.seeds,
                      "rows": rows, "machine": {"cpu": platform.processor() or platform.machine(),
                                                "cores": os.cpu_count()}}))


if __name__ == "__main__":
    main()
