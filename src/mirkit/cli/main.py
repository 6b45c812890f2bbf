"""``mirkit`` entry point: parses the command line and dispatches to one module per command group.

Exit codes: 0 done, 1 failures under ``--strict`` or an aborted run, 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from mirkit import __version__
from mirkit.cli import (bench_cmd, cache_cmd, data_cmd, demo_cmd, encoders_cmd, extract_cmd, predict_cmd, probe_cmd,
                        search_cmd, tune_cmd)
from mirkit.errors import ConfigError, MirkitError, UnknownNameError

_GROUPS = (encoders_cmd, extract_cmd, cache_cmd, data_cmd, probe_cmd, tune_cmd, predict_cmd, bench_cmd, search_cmd, demo_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mirkit", description="Music foundation models for MIR work.")
    parser.add_argument("--version", action="version", version=f"mirkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every skipped file")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in _GROUPS:
        group.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["search", "train"]:  # `mirkit search train` is the search-train command
        argv = ["search-train", *argv[2:]]
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.run(args) or 0)
    except (ConfigError, UnknownNameError) as exc:
        print(f"mirkit {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except MirkitError as exc:
        print(f"mirkit {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mirkit {args.command}: interrupted; rerun the same command to resume.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
