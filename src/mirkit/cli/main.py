"""``mirkit`` entry point: parses the command line and dispatches to one module per command group.

Exit codes: 0 done, 1 failures under ``--strict`` or an aborted run, 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from mirkit import __version__
from mirkit.cli import (
    analyze_cmd,
    bench_cmd,
    boost_cmd,
    cache_cmd,
    data_cmd,
    demo_cmd,
    encoders_cmd,
    extract_cmd,
    predict_cmd,
    pretrain_cmd,
    probe_cmd,
    robustness_cmd,
    search_cmd,
    tune_cmd,
)
from mirkit.errors import ConfigError, MirkitError, UnknownNameError

_GROUPS = (analyze_cmd, encoders_cmd, extract_cmd, cache_cmd, data_cmd, probe_cmd, tune_cmd, boost_cmd, pretrain_cmd,
           predict_cmd, bench_cmd, robustness_cmd, search_cmd, demo_cmd)


class MirkitParser(argparse.ArgumentParser):
    """An argument parser whose command groups may name a default subcommand.

    ``mirkit search "calm piano" --db LIB`` is ``mirkit search query "calm piano" --db LIB``: when a
    group's first argument is not one of its subcommands (nor ``-h``), ``default_subcommand`` is
    parsed first. This happens inside argparse, so leading options (``mirkit -v search train``) work.
    """

    default_subcommand: str | None = None
    subcommands: tuple[str, ...] = ()
    #: adds this parser's options when it is first used, so that commands whose options are generated
    #: from heavy modules (``mirkit tune`` reads torch-based method configs) cost nothing to the others
    populate: Callable[[argparse.ArgumentParser], None] | None = None

    def parse_known_args(self, args=None, namespace=None):
        if self.populate is not None:
            populate, self.populate = self.populate, None
            populate(self)
        if self.default_subcommand is not None:
            args = list(sys.argv[1:] if args is None else args)
            if not args or (args[0] not in self.subcommands and args[0] not in ("-h", "--help")):
                args = [self.default_subcommand, *args]
        return super().parse_known_args(args, namespace)


def build_parser() -> argparse.ArgumentParser:
    parser = MirkitParser(prog="mirkit", description="Music foundation models for MIR work.")
    parser.add_argument("--version", action="version", version=f"mirkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every skipped file")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in _GROUPS:
        group.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
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
