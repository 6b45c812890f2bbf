"""``mirkit predict``: apply a probe run (`mirkit probe`) or a tune run (`mirkit tune`) to new audio."""

from __future__ import annotations

import argparse
import sys


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("predict", help="predict labels for new audio with a trained probe run")
    parser.add_argument("--model", required=True, help="a run folder written by `mirkit probe`, `mirkit tune` or "
                        "`mirkit boost`")
    parser.add_argument("--input", required=True, help="audio folder, file or manifest (a folder holding a "
                        "manifest.jsonl, such as a suite's task folder, is read as that manifest)")
    parser.add_argument("--out", default="predictions.jsonl",
                        help="predictions file (.jsonl or .csv) for a clip-level run; for a run on a time-resolved "
                             "task (probe, tune or boost) a folder, and a name ending in .jsonl or .csv is refused: "
                             "predictions.jsonl and per file what the task's kind writes (NAME.beats.txt and "
                             "NAME.downbeats.txt, NAME.lab, NAME.mid, NAME.onsets.txt, ...)")
    parser.add_argument("--store", default=None, help="feature store (default: <model>/../features, as probe)")
    parser.add_argument("--device", default="cpu", help="tune runs: where the tuned model runs")
    parser.add_argument("--system", default="boosted", choices=("boosted", "baseline", "twin"),
                        help="boost runs: which system (at the largest fraction, best validated seed)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any file was skipped")
    parser.add_argument("--allow-empty", action="store_true",
                        help="exit 0 even when no file was predicted (by default that exits 1)")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows, skipped, message = _predict(args)
    print(message)
    if rows == 0 and not args.allow_empty:
        print(f"mirkit predict: no file of {args.input} was predicted ({skipped} skipped; see above). Pass a "
              "folder of audio, an audio file or a manifest, or --allow-empty if none is expected.", file=sys.stderr)
        return 1
    return 1 if args.strict and skipped else 0


def _predict(args: argparse.Namespace) -> tuple[int, int, str]:
    """Run the prediction that fits the model folder: ``(files predicted, files skipped, summary text)``."""
    import json
    from pathlib import Path

    from mirkit.adapt.predict import predict
    from mirkit.features.inputs import manifest_of_task_folder

    args.input = str(manifest_of_task_folder(args.input))  # a suite's task folder: the clips its manifest lists
    if (Path(args.model) / "tune.json").is_file():
        from mirkit.tune.predict import predict_tuned

        rows, skipped = predict_tuned(run_dir=args.model, source=args.input, out_path=args.out, device=args.device,
                                      progress=not args.no_progress)
        lines = [f"skipped {path}: {reason}" for path, reason in skipped]
        where = args.out if args.out.endswith((".jsonl", ".csv")) else f"{args.out}/ (per file, and predictions.jsonl)"
        return rows, len(skipped), "\n".join([*lines, f"Wrote {rows} predictions to {where} ({len(skipped)} files "
                                                      "skipped)"])
    store = args.store or str(Path(args.model).resolve().parent / "features")
    if (Path(args.model) / "boost.json").is_file():
        from mirkit.boost.predict import predict_boosted

        if args.store is None:
            store = json.loads((Path(args.model) / "boost.json").read_text())["store"]
        report, rows = predict_boosted(run_dir=args.model, source=args.input, store=store, out_dir=args.out,
                                       system=args.system, progress=not args.no_progress)
        return rows, report.num_skipped, (f"{report.summary()}\nWrote {rows} files' beats, notes, tags or stems to "
                                          f"{args.out}/ (and {args.out}/predictions.jsonl)")
    summary = Path(args.model) / "summary.json"
    if summary.is_file() and _frame_level(json.loads(summary.read_text())):
        from mirkit.adapt.timed.predict import predict_timed

        report, rows = predict_timed(run_dir=args.model, source=args.input, store=store, out_dir=args.out,
                                     progress=not args.no_progress)
        return rows, report.num_skipped, (f"{report.summary()}\nWrote {rows} files' events to {args.out}/ (and "
                                          f"{args.out}/predictions.jsonl)")
    report, rows = predict(run_dir=args.model, source=args.input, store=store, out_path=args.out,
                           progress=not args.no_progress)
    return rows, report.num_skipped, f"{report.summary()}\nWrote {rows} predictions to {args.out}"


def _frame_level(summary: dict) -> bool:
    """Whether a probe run's heads are frame-level (its task's kind says; runs from before kinds: pooling)."""
    from mirkit.kinds import KINDS

    kind = summary.get("kind")
    return KINDS.get(kind).frame_level if kind in KINDS else summary.get("pooling") == "none"
