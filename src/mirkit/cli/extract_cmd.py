"""``mirkit extract``: audio -> layer-wise features in the store."""

from __future__ import annotations

import argparse
import sys


def add_parser(commands: argparse._SubParsersAction) -> None:
    from mirkit.adapt.config import LOUDNESS, LOUDNESS_HELP

    parser = commands.add_parser("extract", help="extract layer-wise features into a feature store")
    parser.add_argument("--encoder", required=True, help="encoder name (see `mirkit encoders`); random:NAME for a twin")
    parser.add_argument("--input", required=True, help="folder (recursive), audio file, or manifest (.jsonl/.txt)")
    parser.add_argument("--store", required=True, help="feature store folder")
    parser.add_argument("--layers", default="all", help="'all' or comma-separated indices, e.g. 0,3,6")
    parser.add_argument("--pool", default="mean", choices=("mean", "none"),
                        help="mean: clip vectors; none: frame-level features too")
    parser.add_argument("--weights", help="load the encoder's weights from this directory")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="windows per forward pass (default: 4 on the CPU, 8 on a GPU)")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: cores-1, max 4, on CPU; cores-2 on GPU)")
    parser.add_argument("--window-s", type=float, default=None, help="analysis window (default: the encoder's)")
    parser.add_argument("--hop-s", type=float, default=None, help="hop between windows (default: window)")
    parser.add_argument("--frame-rate-hz", type=float, default=None,
                        help="frames per second for encoders with a free hop (CREPE; default: the encoder's)")
    parser.add_argument("--channels", default="mean", choices=("mean", "first"), help="channel policy")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16"), help="stored dtype")
    parser.add_argument("--on-error", default="skip", choices=("skip", "raise"))
    parser.add_argument("--runtime", default="auto", choices=("auto", "torch", "onnxruntime"),
                        help="what runs the network on the CPU (auto: ONNX Runtime where the encoder supports it, "
                             "musicnn: about 1.5x faster; recorded in the recipe)")
    parser.add_argument("--loudness", default="none", choices=LOUDNESS,
                        help=f"{LOUDNESS_HELP}; recorded in the recipe (default none: as decoded)")
    parser.add_argument("--engine", default="local", choices=("local", "ray"),
                        help="local: this machine; ray: a Ray Data actor pool (pip install 'mirkit[ray]'), same store")
    parser.add_argument("--address", default=None,
                        help="--engine ray: a running cluster (ray://HOST:10001 or auto); default: a local instance")
    parser.add_argument("--actors", type=int, default=None,
                        help="--engine ray: encoder actors (default: the cluster's CPUs, or GPUs / --gpus-per-actor)")
    parser.add_argument("--gpus-per-actor", type=float, default=0.0, help="--engine ray: 0 for CPU actors")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any file was skipped")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mirkit.errors import AudioError
    from mirkit.features.extract import ExtractConfig, extract

    config = ExtractConfig(
        encoder=args.encoder, layers=args.layers, pooling=args.pool, weights_dir=args.weights, device=args.device,
        batch_size=args.batch_size, num_workers=args.workers, window_s=args.window_s, hop_s=args.hop_s,
        frame_rate_hz=args.frame_rate_hz,
        channel_policy=args.channels, dtype=args.dtype, on_error=args.on_error, runtime=args.runtime,
        loudness=args.loudness,
    )
    if args.engine == "ray":
        from mirkit.features.ray_engine import extract_ray

        report = extract_ray(args.input, store=args.store, config=config, address=args.address, actors=args.actors,
                             gpus_per_actor=args.gpus_per_actor, progress=not args.no_progress)
        print(report.summary())
        return 1 if args.strict and report.num_skipped else 0
    try:
        report = extract(args.input, store=args.store, config=config, progress=not args.no_progress)
    except AudioError as exc:  # only with --on-error raise
        print(f"mirkit extract: aborted: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 1 if args.strict and report.num_skipped else 0
