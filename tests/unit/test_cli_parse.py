"""Command-line parsing: `mirkit search` subcommands (query is the default), with leading options."""

from __future__ import annotations

import pytest

from mirkit.cli.main import build_parser


@pytest.mark.parametrize("argv, command, values", [
    (["search", "calm piano", "--db", "lib"], "query", {"query": "calm piano", "db": "lib"}),
    (["search", "query", "calm piano", "--db", "lib"], "query", {"query": "calm piano"}),
    (["search", "--like", "a.ogg", "--db", "lib"], "query", {"like": "a.ogg", "query": None}),
    (["-v", "search", "train", "--db", "lib", "--out", "m"], "train", {"out": "m", "verbose": True}),
    (["search", "train", "--db", "lib", "--out", "m", "--epochs", "5"], "train", {"epochs": 5}),
])
def test_search_subcommands(argv, command, values):
    args = build_parser().parse_args(argv)
    assert args.command == "search" and args.search_command == command
    assert args.run.__name__ == ("run_train" if command == "train" else "run_search")
    for key, value in values.items():
        assert getattr(args, key) == value


def test_an_unknown_option_is_still_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["search", "train", "--db", "lib", "--out", "m", "--bogus"])
    assert exit_info.value.code == 2 and "--bogus" in capsys.readouterr().err
