"""``mirkit predict``: apply a probe run (`mirkit probe`) or a tune run (`mirkit tune`) to new audio."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    from mirkit.kinds import KINDS, FrameKind

    files = "; ".join(f"{name}: {kind.files}" for name, kind in KINDS.items() if isinstance(kind, FrameKind))
    parser = commands.add_parser("predict", help="predict labels for new audio with a trained probe run")
    parser.add_argument("--model", required=True, help="a run folder written by `mirkit probe`, `mirkit tune` or "
                        "`mirkit boost`")
    parser.add_argument("--input", required=True, help="audio folder, file or manifest")
    parser.add_argument("--out", default="predictions.jsonl",
                        help="predictions file (.jsonl or .csv); for a run on a time-resolved task (probe or "
                             f"tune), a folder: predictions.jsonl and per file ({files})")
    parser.add_argument("--store", default=None, help="feature store (default: <model>/../features, as probe)")
    parser.add_argument("--device", default="cpu", help="tune runs: where the tuned model runs")
    parser.add_argument("--system", default="boosted", choices=("boosted", "baseline", "twin"),
                        help="boost runs: which system (at the largest fraction, best validated seed)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any file was skipped")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from mirkit.adapt.predict import predict

    if (Path(args.model) / "tune.json").is_file():
        from mirkit.tune.predict import predict_tuned

        rows, skipped = predict_tuned(run_dir=args.model, source=args.input, out_path=args.out, device=args.device,
                                      progress=not args.no_progress)
        for path, reason in skipped:
            print(f"skipped {path}: {reason}")
        where = args.out if args.out.endswith((".jsonl", ".csv")) else f"{args.out}/ (per file, and predictions.jsonl)"
        print(f"Wrote {rows} predictions to {where} ({len(skipped)} files skipped)")
        return 1 if args.strict and skipped else 0
    store = args.store or str(Path(args.model).resolve().parent / "features")
    if (Path(args.model) / "boost.json").is_file():
        from mirkit.boost.predict import predict_boosted

        if args.store is None:
            store = json.loads((Path(args.model) / "boost.json").read_text())["store"]
        report, rows = predict_boosted(run_dir=args.model, source=args.input, store=store, out_dir=args.out,
                                       system=args.system, progress=not args.no_progress)
        print(report.summary())
        print(f"Wrote {rows} files' beats, notes, tags or stems to {args.out}/ (and {args.out}/predictions.jsonl)")
        return 1 if args.strict and report.num_skipped else 0
    summary = Path(args.model) / "summary.json"
    if summary.is_file() and _frame_level(json.loads(summary.read_text())):
        from mirkit.adapt.timed.predict import predict_timed

        report, rows = predict_timed(run_dir=args.model, source=args.input, store=store, out_dir=args.out,
                                     progress=not args.no_progress)
        print(report.summary())
        print(f"Wrote {rows} files' events to {args.out}/ (and {args.out}/predictions.jsonl)")
        return 1 if args.strict and report.num_skipped else 0
    report, rows = predict(run_dir=args.model, source=args.input, store=store, out_path=args.out,
                           progress=not args.no_progress)
    print(report.summary())
    print(f"Wrote {rows} predictions to {args.out}")
    return 1 if args.strict and report.num_skipped else 0


def _frame_level(summary: dict) -> bool:
    """Whether a probe run's heads are frame-level (its task's kind says; runs from before kinds: pooling)."""
    from mirkit.kinds import KINDS

    kind = summary.get("kind")
    return KINDS.get(kind).frame_level if kind in KINDS else summary.get("pooling") == "none"
