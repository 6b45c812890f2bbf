"""``mirkit probe``: probe every layer of an encoder on one task."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("probe", help="train probes on an encoder's layers for one task")
    parser.add_argument("--task", required=True, help="a task folder with manifest.jsonl (from `mirkit data build`)")
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--out", required=True, help="run folder (results/*.json, summary.json)")
    parser.add_argument("--store", default=None, help="feature store (default: <out>/../features)")
    parser.add_argument("--layers", default="all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--model", default="linear", choices=("linear", "mlp", "tcn"),
                        help="probe head; on a time-resolved task (beat, chords) it runs on every frame, and tcn adds "
                             "a small dilated temporal convolution network over the frozen frames")
    parser.add_argument("--weighted", action="store_true", help="also a learned softmax-weighted sum of the layers")
    parser.add_argument("--weights", help="encoder weights folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frame-rate-hz", type=float, default=None,
                        help="frames per second for encoders with a free hop (CREPE; default: the encoder's)")
    parser.add_argument("--loudness", default="none", choices=("none", "peak", "lufs"),
                        help="level policy of the features: one gain per file before the encoder, peak to -1 dBFS "
                             "or -23 LUFS (limited to -1 dBFS peak); kept with the heads, so predict applies it too")
    parser.add_argument("--augment", default="none",
                        help="clip-level tasks: augmented copies of the training clips join the training split, e.g. "
                             "eq,room (gain, eq, room, noise keep the label; pitch, stretch move it by rule); "
                             "validation and test are untouched")
    parser.add_argument("--augment-copies", type=int, default=1, help="augmented copies per training clip")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mirkit.adapt.probe import ProbeConfig
    from mirkit.adapt.run import format_summary, probe_task, task_kind
    from mirkit.adapt.timed.fit import FrameProbeConfig
    from mirkit.adapt.timed.run import FRAME_KINDS, probe_timed_task
    from mirkit.errors import ConfigError

    store = args.store or str(Path(args.out).resolve().parent / "features")
    kind, _ = task_kind(Path(args.task))
    if kind in FRAME_KINDS:
        if args.augment != "none":
            raise ConfigError(f"--augment is for clip-level probes; a {kind} task trains frame heads on stored "
                              "features of the original clips. Use `mirkit tune --augment` for an augmented "
                              "time-resolved model.")
        summary = probe_timed_task(task_dir=args.task, encoder=args.encoder, out_dir=args.out, store=store,
                                   layers=args.layers, seeds=args.seeds, config=FrameProbeConfig(head=args.model),
                                   weights_dir=args.weights, device=args.device, weighted=args.weighted,
                                   frame_rate_hz=args.frame_rate_hz, loudness=args.loudness,
                                   progress=not args.no_progress)
        print(format_summary(summary))
        print(f"Results: {args.out}/results/, summary: {args.out}/summary.json")
        return 0
    if args.model == "tcn":
        raise ConfigError("--model tcn is a temporal head for time-resolved tasks (beat, chords); clip-level tasks "
                          "take linear or mlp.")
    summary = probe_task(task_dir=args.task, encoder=args.encoder, out_dir=args.out, store=store, layers=args.layers,
                         seeds=args.seeds, config=ProbeConfig(model=args.model), weights_dir=args.weights,
                         device=args.device, weighted=args.weighted, frame_rate_hz=args.frame_rate_hz,
                         loudness=args.loudness, augment=args.augment, augment_copies=args.augment_copies,
                         progress=not args.no_progress)
    print(format_summary(summary))
    print(f"Results: {args.out}/results/, summary: {args.out}/summary.json")
    return 0
