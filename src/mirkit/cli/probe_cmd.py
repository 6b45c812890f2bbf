"""``mirkit probe``: probe every layer of an encoder on one task (clip- or frame-level, as the task's kind says)."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    from mirkit.adapt.config import ProbeRunConfig
    from mirkit.cli.options import add_options

    parser = commands.add_parser("probe", help="train probes on an encoder's layers for one task")
    parser.add_argument("--task", required=True, help="a task folder with manifest.jsonl (from `mirkit data build`)")
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--out", required=True, help="run folder (results/*.json, summary.json)")
    parser.add_argument("--store", default=None, help="feature store (default: <out>/../features)")
    add_options(parser, [ProbeRunConfig])
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mirkit.adapt.config import ProbeRunConfig
    from mirkit.adapt.run import format_summary, probe_task
    from mirkit.cli.options import config_from_args

    config = config_from_args(ProbeRunConfig, args, task_dir=args.task, encoder=args.encoder, out_dir=args.out,
                              store=args.store, progress=not args.no_progress)
    summary = probe_task(config)
    print(format_summary(summary))
    print(f"Results: {args.out}/results/, summary: {args.out}/summary.json")
    return 0
