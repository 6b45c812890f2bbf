"""``mirkit boost``: a task model with and without injected foundation features, across training fractions."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("boost", help="inject an encoder's features into a task model (SoniDo booster) and "
                                               "measure the gain across training fractions",
                                 description="Three systems per fraction and seed: the task model alone, boosted with "
                                             "ENCODER's features, and boosted with its random-init twin. Resumable: "
                                             "finished cells are kept.")
    parser.populate = _add_options


def _add_options(parser: argparse.ArgumentParser) -> None:
    from mirkit.boost import BoostConfig
    from mirkit.cli.options import add_options

    parser.add_argument("--task", help="a beat, transcription, tagging or separation task folder (`mirkit data build`)")
    parser.add_argument("--model", help="task model: beat-tcn (beat), onsets-frames (transcription), short-chunk "
                        "(tagging) or open-unmix (separation); --list-models")
    parser.add_argument("--encoder", help="the encoder whose features are injected (its twin: random:ENCODER)")
    parser.add_argument("--out", help="run folder (boost.json, results/, models/, summary.json, report.md)")
    parser.add_argument("--store", default=None, help="feature store (default: <out>/../features)")
    parser.add_argument("--seeds", type=int, default=3)
    add_options(parser.add_argument_group("training"), [BoostConfig])
    parser.add_argument("--baseline-from", default=None, metavar="RUN",
                        help="copy the finished baseline cells of another boost run of this task, model and settings "
                             "(any encoder) instead of training them again")
    parser.add_argument("--weights", help="encoder weights folder")
    parser.add_argument("--frame-rate-hz", type=float, default=None, help="for encoders with a free hop (CREPE)")
    parser.add_argument("--device", default="cpu", help="where features are extracted (training runs on the CPU)")
    parser.add_argument("--list-models", action="store_true", help="describe the task models and exit")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mirkit.bench.boost_report import write_boost_report
    from mirkit.boost import TASK_MODELS, BoostConfig, boost_task
    from mirkit.cli.options import config_from_args
    from mirkit.errors import ConfigError

    if args.list_models:
        for name, spec in TASK_MODELS.items():
            print(f"{name:<14} {spec.kind:<14} input {spec.input_encoder:<7} {spec.description}")
        return 0
    missing = [flag for flag, value in (("--task", args.task), ("--model", args.model), ("--encoder", args.encoder),
                                        ("--out", args.out)) if not value]
    if missing:
        raise ConfigError(f"mirkit boost needs {', '.join(missing)}.")
    store = args.store or str(Path(args.out).resolve().parent / "features")
    summary = boost_task(task_dir=args.task, model=args.model, encoder=args.encoder, out_dir=args.out, store=store,
                         config=config_from_args(BoostConfig, args), seeds=args.seeds, weights_dir=args.weights,
                         frame_rate_hz=args.frame_rate_hz, device=args.device,
                         baseline_from=args.baseline_from, progress=not args.no_progress)
    for gain in summary["gains"]:
        print(f"fraction {gain['fraction']:>5}: {gain['system']:<16} {gain['gain']:+.3f}"
              + ("  (claimed: seed ranges do not overlap)" if gain["claimed"] else ""))
    md, _ = write_boost_report(args.out)
    print(f"Report: {md}; results: {args.out}/results/, summary: {args.out}/summary.json")
    return 0
