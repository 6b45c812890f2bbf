"""``mirkit encoders``: list encoders; ``mirkit encoders init NAME --random --out DIR``."""

from __future__ import annotations

import argparse
import json


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("encoders", help="list encoders and whether each can run now")
    parser.add_argument("--json", action="store_true", help="print one JSON object per encoder")
    parser.add_argument("--random", action="store_true", help="also list the random-init twins")
    parser.set_defaults(run=run_list)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    init = actions.add_parser("init", help="write a checkpoint in the published layout (config.json + model.safetensors)")
    init.add_argument("name", help="a Hugging Face family encoder, e.g. mert-v1-95m")
    init.add_argument("--random", action="store_true", required=True, help="random weights (the only mode offline)")
    init.add_argument("--out", required=True, help="output directory")
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--config", help="JSON object of config overrides (e.g. a tiny test shape)")
    init.set_defaults(run=run_init)


def run_list(args: argparse.Namespace) -> int:
    from mirkit.encoders import list_specs

    rows = []
    for spec in list_specs(include_random=args.random):
        rows.append({
            "name": spec.name, "family": spec.family, "sample_rate": spec.sample_rate, "layers": spec.num_layers,
            "dims": sorted({layer.dim for layer in spec.layers}), "frame_rate_hz": round(spec.frame_rate_hz, 3),
            "licence": spec.licence, "weights": spec.weights_kind, "available": spec.weights_available(),
            "source": spec.source,
        })
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    header = f"{'name':<22} {'family':<12} {'rate':>6} {'layers':>6} {'dims':<16} {'fps':>7} {'licence':<14} {'weights':<7} ready"
    print(header)
    print("-" * len(header))
    for row in rows:
        dims = ",".join(str(d) for d in row["dims"])
        if len(dims) > 16:  # many widths: show the range (the full list is in --json)
            dims = f"{row['dims'][0]}..{row['dims'][-1]} ({len(row['dims'])})"
        print(f"{row['name']:<22} {row['family']:<12} {row['sample_rate']:>6} {row['layers']:>6} {dims:<16} "
              f"{row['frame_rate_hz']:>7} {row['licence']:<14} {row['weights']:<7} {'yes' if row['available'] else 'no'}")
    print("\nready = weights present on this machine. Hub encoders load from the Hugging Face cache or --weights DIR;"
          "\n`mirkit encoders init NAME --random --out DIR` writes a random checkpoint in the published layout.")
    return 0


def run_init(args: argparse.Namespace) -> int:
    from mirkit.encoders.hf import init_random_checkpoint

    overrides = json.loads(args.config) if args.config else None
    path = init_random_checkpoint(args.name, out_dir=args.out, seed=args.seed, config_overrides=overrides)
    print(f"Wrote random-weight {args.name} checkpoint to {path} (config.json + model.safetensors). "
          f"Use it with --weights {path}.")
    return 0
