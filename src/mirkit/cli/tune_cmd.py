"""``mirkit tune``: fine-tuning, parameter-efficient methods and a from-scratch model on one task.

The training and method options are generated from ``TuneConfig`` and each method's config
dataclass, so their defaults are written once, in the library.
"""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("tune", help="train an encoder on a task with one transfer method (resumable)",
                                 description="`--list-methods` describes the methods; `--show-modules ENCODER` "
                                 "prints module names for --targets.")
    parser.populate = _add_options  # built on first use: the options come from torch-based config classes


def _add_options(parser: argparse.ArgumentParser) -> None:
    from mirkit.cli.options import add_options
    from mirkit.tune import METHODS, TuneConfig

    parser.add_argument("--task", help="a task folder with manifest.jsonl (from `mirkit data build` / `data adapt`)")
    parser.add_argument("--encoder", help="encoder name (not needed by methods that bring their own, e.g. scratch)")
    parser.add_argument("--method", default=TuneConfig().method, choices=list(METHODS))
    parser.add_argument("--out", help="run folder (tune.json, seed<k>/, results/*.json, summary.json)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--resume", default="auto", choices=("auto", "never"),
                        help="auto: continue an interrupted seed from its last checkpoint (default)")
    add_options(parser.add_argument_group("training"), [TuneConfig])
    users: dict[type, list[str]] = {}
    for name, spec in METHODS.items():
        users.setdefault(spec.config_cls, []).append(name)
    add_options(parser.add_argument_group("method options"), list(users),
                users={cls: ", ".join(names) for cls, names in users.items()})
    parser.add_argument("--weights", help="encoder weights folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--list-methods", action="store_true", help="describe the methods and exit")
    parser.add_argument("--show-modules", metavar="ENCODER", help="print an encoder's module names and exit")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import os

    from mirkit.cli.options import config_from_args
    from mirkit.errors import ConfigError
    from mirkit.tune import METHODS, TuneConfig, get_method, tune_task
    from mirkit.tune.run import format_tune_summary

    if args.list_methods:
        for name, spec in METHODS.items():
            print(f"{name:<9} {spec.family:<18} trains: {spec.trains}\n{'':28}applies to: {spec.applies_to}"
                  + (f"\n{'':28}mergeable: `mirkit predict` folds it into the weights" if spec.mergeable else ""))
        return 0
    if args.show_modules:
        from mirkit.encoders import load_encoder

        encoder = load_encoder(args.show_modules, weights_dir=args.weights)
        for name, module in encoder.named_modules():
            if name:
                print(f"{name}  {type(module).__name__}")
        return 0
    spec = get_method(args.method)
    missing = [flag for flag, value in (("--task", args.task), ("--out", args.out)) if not value]
    if spec.build_encoder is None and not args.encoder:
        missing.append("--encoder")
    if missing:
        raise ConfigError(f"mirkit tune needs {', '.join(missing)}.")
    config = config_from_args(TuneConfig, args, method=args.method, options=config_from_args(spec.config_cls, args))
    summary = tune_task(task_dir=args.task, encoder=args.encoder or "logmel", out_dir=args.out, config=config,
                        seeds=args.seeds, weights_dir=args.weights, device=args.device, resume=args.resume,
                        progress=not args.no_progress)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the job
        print(format_tune_summary(summary))
        print(f"Results: {args.out}/results/, summary: {args.out}/summary.json; apply it: mirkit predict --model "
              f"{args.out}")
    return 0
