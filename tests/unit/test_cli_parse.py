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


def test_building_the_parser_does_not_import_torch():
    """Every `mirkit` call builds the parser; commands that do not need torch must not pay for it."""
    import subprocess
    import sys

    code = ("import sys; from mirkit.cli.main import build_parser; "
            "build_parser().parse_args(['data', 'tasks']); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tune_options_appear_when_tune_is_parsed():
    args = build_parser().parse_args(["tune", "--method", "dora", "--lora-rank", "2"])
    assert args.method == "dora" and args.lora_rank == 2 and args.max_epochs == 30


@pytest.mark.parametrize("argv, config_path", [
    (["probe", "--task", "t", "--encoder", "e", "--out", "o"], "mirkit.adapt.config:ProbeRunConfig"),
    (["bench", "--suite", "s", "--out", "o"], "mirkit.bench.config:BenchConfig"),
])
def test_probe_and_bench_options_are_their_configs_fields_with_the_same_defaults(argv, config_path):
    import importlib

    from mirkit.cli.options import cli_fields, config_from_args

    module, name = config_path.split(":")
    cls = getattr(importlib.import_module(module), name)
    args = build_parser().parse_args(argv)
    fields = cli_fields(cls)
    assert len(fields) >= 8
    for field, _ in fields:
        assert getattr(args, field.name) == field.default, field.name
    fixed = {"task_dir": "t", "encoder": "e", "out_dir": "o"} if argv[0] == "probe" else {"suite_dir": "s", "out_dir": "o"}
    built = config_from_args(cls, build_parser().parse_args([*argv, "--seeds", "5", "--loudness", "peak"]), **fixed)
    assert (built.seeds, built.loudness) == (5, "peak")
    with pytest.raises(SystemExit):  # choices come from the config's fields
        build_parser().parse_args([*argv, "--loudness", "loud"])


def test_building_the_parser_does_not_import_the_registries_or_numpy():
    """The choices and help texts of the parser are plain strings: the task-kind, peer and suite registries
    (and numpy with them) load when a command runs, not on every `mirkit` call."""
    import subprocess
    import sys

    code = ("import sys; from mirkit.cli.main import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'mirkit.kinds', 'mirkit.data.tasks') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
