"""``mirkit analyze PATH... --out DIR`` (the default subcommand ``files``) and ``mirkit analyze train``."""

from __future__ import annotations

import argparse
import sys


def add_parser(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "analyze", help="key, tempo, beats, chords, notes, instrument and tags of music files (shipped heads)",
        description="Subcommands: files (the default: `mirkit analyze SONGS --out DIR` is `mirkit analyze files "
                    "SONGS --out DIR`) and train (rebuild the heads from a suite).")
    group.default_subcommand, group.subcommands = "files", ("files", "train")
    subs = group.add_subparsers(dest="analyze_command", metavar="{files,train}")
    _add_files(subs)
    _add_train(subs)


def _add_files(subs: argparse._SubParsersAction) -> None:
    files = subs.add_parser("files", help="analyse audio files and folders (the default)",
                            description="Analyse every audio file under PATH... with the shipped heads (or --heads): "
                            "per file OUT/<name>.json, .beats.txt, .downbeats.txt, .lab and .mid, and one "
                            "OUT/analysis.jsonl (or .csv). Features go through the store, so a rerun resumes.")
    files.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders (recursive) or manifests")
    files.add_argument("--out", required=True, help="output folder (created)")
    files.add_argument("--tasks", default=None, help="comma list of key, beats, chords, notes, instrument, tags "
                       "(default: every task of the heads)")
    files.add_argument("--heads", default=None, help="analysis bundle from `mirkit analyze train` (default: the "
                       "heads shipped with mirkit)")
    files.add_argument("--store", default=None, help="feature store (default: OUT/features)")
    files.add_argument("--format", default="jsonl", choices=("jsonl", "csv"), help="the folder's summary file")
    files.add_argument("--strict", action="store_true", help="exit 1 when any file was skipped")
    files.add_argument("--no-progress", action="store_true")
    files.set_defaults(run=run_files)


def _add_train(subs: argparse._SubParsersAction) -> None:
    train = subs.add_parser("train", help="train the analysis heads on a suite and write a bundle",
                            description="Probe each candidate encoder per analysis task on SUITE (resumable), keep "
                            "the encoder and layer with the best validation score, and write the bundle (heads, "
                            "bundle.json, MODEL_CARD.md) to OUT. The shipped heads are made by this command.")
    train.add_argument("--suite", required=True, help="suite folder from `mirkit data build` (standard for the "
                       "shipped heads)")
    train.add_argument("--out", required=True, help="bundle folder (replaced when the run ends)")
    train.add_argument("--work", default=None, help="probe runs and features (default: OUT.work; rerun resumes)")
    train.add_argument("--tasks", default="all", help="comma list of analysis tasks (default: all)")
    train.add_argument("--encoders", default=None, help="candidates per task, e.g. key=logmel+chroma,beats=musicnn-mtt "
                       "(default: the registry's)")
    train.add_argument("--seeds", type=int, default=3, help="seeds per head (all ship; outputs are averaged)")
    train.add_argument("--frame-head", default="linear", choices=("linear", "mlp", "tcn"),
                       help="head of the frame-level tasks (beats, chords, notes)")
    train.add_argument("--loudness", default="peak", choices=("none", "peak", "lufs"),
                       help="level policy of every head's features")
    train.add_argument("--no-progress", action="store_true")
    train.set_defaults(run=run_train)


def run_files(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mirkit.analysis.bundle import Bundle, parse_tasks
    from mirkit.analysis.outputs import write_outputs
    from mirkit.analysis.run import analyze_paths, collect_inputs

    bundle = Bundle.load(args.heads)
    tasks = parse_tasks(args.tasks) if args.tasks else bundle.tasks
    for task in tasks:
        bundle.entry(task)  # a task without a head fails before any work
    paths, not_audio = collect_inputs(args.paths)
    report = analyze_paths(paths, bundle=bundle, tasks=tasks, store=args.store or Path(args.out) / "features",
                           progress=not args.no_progress)
    report.skipped = not_audio + report.skipped
    meta = {"bundle": str(bundle.path), "tasks": {t: bundle.info["tasks"][t]["encoder"] for t in tasks}}
    summary = write_outputs(report, out_dir=args.out, roots=args.paths, fmt=args.format, meta=meta)
    for row in report.skipped:
        print(f"skipped {row['path']}: {row['reason']}: {row['message']}", file=sys.stderr)
    print(f"{report.summary()}\nWrote {summary} and per file its .json (and .beats.txt, .lab, .mid) to {args.out}/")
    if not report.results:
        print(f"mirkit analyze: no file of {', '.join(args.paths)} was analysed (see above).", file=sys.stderr)
        return 1
    return 1 if args.strict and report.skipped else 0


def run_train(args: argparse.Namespace) -> int:
    from mirkit.analysis.train import MAX_BUNDLE_BYTES, BundleTrainConfig, parse_encoders, train_bundle

    info = train_bundle(BundleTrainConfig(suite_dir=args.suite, out_dir=args.out, work_dir=args.work, tasks=args.tasks,
                                          encoders=parse_encoders(args.encoders), seeds=args.seeds,
                                          frame_head=args.frame_head, loudness=args.loudness,
                                          progress=not args.no_progress))
    for task, entry in info["tasks"].items():  # type: ignore[union-attr]
        test = entry["scores"]["test"]
        print(f"{task:<11} {entry['encoder']:<14} {entry['job']:<10} valid {entry['scores']['valid']:.3f}  "
              f"test {test['mean']:.3f} [{test['min']:.3f}, {test['max']:.3f}]")
    size = int(info["bytes"])  # type: ignore[arg-type]
    note = "" if size <= MAX_BUNDLE_BYTES else f" (over the {MAX_BUNDLE_BYTES / 2**20:.0f} MB a shipped bundle may hold)"
    print(f"Wrote {args.out} ({size / 2**20:.2f} MB{note}; MODEL_CARD.md inside) in {info['train_s']} s")
    return 0
