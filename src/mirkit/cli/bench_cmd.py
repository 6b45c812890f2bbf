"""``mirkit bench`` (run probes and peers on a suite) and ``mirkit report`` (md + html)."""

from __future__ import annotations

import argparse


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_parser(commands: argparse._SubParsersAction) -> None:
    from mirkit.bench.config import DEFAULT_ENCODERS, BenchConfig
    from mirkit.cli.options import add_options

    parser = commands.add_parser(
        "bench", help="probe encoders x tasks x layers x seeds on a built suite, plus the peers",
        description="Extracts what is missing, trains one probe per (task, encoder, layer, seed) job, writes one "
                    "result file per job, skips finished jobs on rerun and records failures without stopping.")
    parser.add_argument("--suite", required=True, help="a suite folder from `mirkit data build`")
    parser.add_argument("--out", required=True, help="bench folder (RUNS)")
    parser.add_argument("--encoders", default="default",
                        help=f"comma list, or 'default' = {','.join(DEFAULT_ENCODERS)}")
    parser.add_argument("--tasks", default="all",
                        help="comma list of the suite's tasks (default: every clip-level task, then the frame-level "
                             "ones)")
    parser.add_argument("--peers", default="default",
                        help="comma list, 'none', or 'default' = every registered peer (those installed run; an "
                             "unknown name is refused with the list)")
    parser.add_argument("--no-weighted", action="store_true", help="skip the learned weighted sum of layers")
    add_options(parser, [BenchConfig])
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
    from mirkit.bench.config import BenchConfig
    from mirkit.bench.runner import run_bench
    from mirkit.cli.options import config_from_args

    config = config_from_args(
        BenchConfig, args, suite_dir=args.suite, out_dir=args.out,
        encoders=None if args.encoders == "default" else _names(args.encoders),
        tasks=None if args.tasks == "all" else _names(args.tasks),
        peers=None if args.peers == "default" else [] if args.peers == "none" else _names(args.peers),
        weighted=not args.no_weighted, progress=not args.no_progress)
    report = run_bench(config)
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
