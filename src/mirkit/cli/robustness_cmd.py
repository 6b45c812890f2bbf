"""``mirkit robustness``: probe runs scored on perturbed copies of their task's test split."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "robustness", help="score trained probes on perturbed test audio (level, filters, room, noise, codecs)",
        description="Perturbs each task's test clips once per perturbation (kept under OUT/audio and reused), "
                    "applies each run's probe (the layer chosen on validation, every seed) to features of the "
                    "perturbed clips, extracted with the run's own recipe, and reports score and drop per "
                    "perturbation. `mirkit report RUNS` then shows a robustness table per task.")
    parser.add_argument("--bench", default=None, help="a bench folder: every clip-level (task, encoder) pair; "
                        "results in RUNS/robustness/")
    parser.add_argument("--run", dest="run_dir", default=None,
                        help="one probe run (`mirkit probe --out`) or clip-level tune run (`mirkit tune --out`), with --task")
    parser.add_argument("--task", default=None, help="the task folder the --run was trained on")
    parser.add_argument("--store", default=None, help="--run: its feature store (default: RUN/../features)")
    parser.add_argument("--out", default=None, help="--run: output folder (default: RUN/robustness)")
    parser.add_argument("--tasks", default=None, help="--bench: comma list (default: the bench's clip-level tasks)")
    parser.add_argument("--encoders", default=None, help="--bench: comma list (default: the bench's encoders)")
    parser.add_argument("--suite", default=None, help="--bench: the suite folder, if it moved since the bench ran")
    parser.add_argument("--perturbations", default=None, help="comma list (default: all; see --list)")
    parser.add_argument("--list", action="store_true", help="describe the perturbations and exit")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)


def _names(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mirkit.errors import ConfigError
    from mirkit.robustness.perturb import PERTURBATIONS

    if args.list:
        for name, spec in PERTURBATIONS.items():
            print(f"{name:<18} {spec.description}")
        return 0
    perturbations = _names(args.perturbations)
    progress = not args.no_progress
    if args.bench:
        from mirkit.robustness.run import score_bench

        results = score_bench(bench_dir=args.bench, suite_dir=args.suite, tasks=_names(args.tasks),
                              encoders=_names(args.encoders), perturbations=perturbations, progress=progress)
        failed = [r for r in results if "error" in r]
        for r in failed:
            print(f"failed: {r['task']} {r['encoder']}: {r['error']}")
        print(f"Scored {len(results) - len(failed)} runs on perturbed test audio ({len(failed)} failed); "
              f"results in {Path(args.bench) / 'robustness'}; `mirkit report {args.bench}` shows them.")
        return 1 if failed else 0
    if not (args.run_dir and args.task):
        raise ConfigError("give --bench RUNS, or --run PROBE_RUN with --task TASK_DIR (or --list).")
    from mirkit.robustness.run import score_any_run

    run_dir = Path(args.run_dir)
    out = args.out or run_dir / "robustness"
    store = args.store or run_dir.resolve().parent / "features"
    results = score_any_run(run_dir=run_dir, task_dir=args.task, out_dir=out, store=store,
                            perturbations=perturbations, progress=progress)
    for result in results:
        print(f"{result['task']} {result['encoder']} ({result['job']}, {result['seeds']} seeds): clean "
              f"{result['clean']['mean']:.3f}")
        for name, scored in result["perturbed"].items():  # type: ignore[union-attr]
            print(f"  {name:<18} {scored['mean']:.3f} +- {scored['std']:.3f}  drop {scored['drop']:+.3f}")
    return 0
