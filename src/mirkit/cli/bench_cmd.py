"""``mirkit bench`` (run probes and peers on a suite) and ``mirkit report`` (md + html)."""

from __future__ import annotations

import argparse


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_parser(commands: argparse._SubParsersAction) -> None:
    from mirkit.bench.defaults import DEFAULT_ENCODERS, DEFAULT_PEERS

    parser = commands.add_parser(
        "bench", help="probe encoders x tasks x layers x seeds on a built suite, plus the peers",
        description="Extracts what is missing, trains one probe per (task, encoder, layer, seed) job, writes one "
                    "result file per job, skips finished jobs on rerun and records failures without stopping.")
    parser.add_argument("--suite", required=True, help="a suite folder from `mirkit data build`")
    parser.add_argument("--out", required=True, help="bench folder (RUNS)")
    parser.add_argument("--encoders", default="default",
                        help=f"comma list, or 'default' = {','.join(DEFAULT_ENCODERS)}")
    parser.add_argument("--tasks", default="all",
                        help="comma list of the suite's tasks (default: every clip-level task, then beat, chords and "
                             "transcription)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--frame-seeds", type=int, default=None,
                        help="seeds of the frame-level tasks (beat, chords, transcription; default: --seeds)")
    parser.add_argument("--layers", default="all")
    parser.add_argument("--model", default="linear", choices=("linear", "mlp"))
    parser.add_argument("--frame-model", default=None, choices=("linear", "mlp", "tcn"),
                        help="head of the frame-level tasks (default: --model); tcn: a small dilated temporal "
                             "convolution network over the frozen frames (about 70k parameters)")
    parser.add_argument("--no-weighted", action="store_true", help="skip the learned weighted sum of layers")
    parser.add_argument("--peers", default="default",
                        help=f"comma list, 'none', or 'default' = {','.join(DEFAULT_PEERS)} (those installed run)")
    parser.add_argument("--real-tempo", default=None, metavar="DIR",
                        help="a tempo_real folder (`mirkit data music`): score each encoder's beat probe and the tempo "
                             "peers on these real recordings (test-only)")
    parser.add_argument("--store", help="feature store (default: RUNS/features)")
    parser.add_argument("--weights", help="weights folder for hub encoders")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--loudness", default="none", choices=("none", "peak", "lufs"),
                        help="level policy of the features: one gain per file before the encoder, peak to -1 dBFS "
                             "or -23 LUFS (limited to -1 dBFS peak); kept with the heads, so predict applies it too")
    parser.add_argument("--jobs", type=int, default=1,
                        help="units (an encoder on a task, or a task's peers) run at once in worker processes, the "
                             "cores split between them; 2 on a 2-core CPU finishes sooner than 1 (default 1)")
    parser.add_argument("--force", action="store_true", help="redo finished jobs")
    parser.add_argument("--report", action="store_true", help="write the report when done")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any pair failed")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)

    report = commands.add_parser("report", help="write report.md and report.html for a bench folder, a folder of tune runs "
                                                    "or a boost run")
    report.add_argument("runs", help="bench folder (`mirkit bench --out`; tune runs under RUNS/tune join it), a "
                        "folder of tune runs (`mirkit tune --out`), or a boost run (`mirkit boost --out`)")
    report.set_defaults(run=run_report)


def run(args: argparse.Namespace) -> int:
    from mirkit.bench.runner import run_bench

    report = run_bench(
        suite_dir=args.suite, out_dir=args.out, encoders=None if args.encoders == "default" else _names(args.encoders),
        tasks=None if args.tasks == "all" else _names(args.tasks), seeds=args.seeds, frame_seeds=args.frame_seeds,
        layers=args.layers,
        model=args.model, frame_model=args.frame_model, weighted=not args.no_weighted,
        peers=None if args.peers == "default" else [] if args.peers == "none" else _names(args.peers),
        store=args.store, weights_dir=args.weights, device=args.device, force=args.force,
        real_tempo=args.real_tempo, loudness=args.loudness, jobs=args.jobs,
        progress=not args.no_progress)
    print(report.summary())
    if args.report:
        run_report(argparse.Namespace(runs=args.out))
    return 1 if args.strict and report.failures else 0


def run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mirkit.bench.boost_report import write_boost_report
    from mirkit.bench.report import write_report
    from mirkit.bench.tune_report import write_methods_report

    root = Path(args.runs)
    writer = (write_report if (root / "bench.json").is_file() else write_boost_report if (root / "boost.json").is_file()
              else write_methods_report)
    md, page = writer(args.runs)
    print(f"Report: {md} and {page}")
    return 0
