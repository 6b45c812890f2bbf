"""Methods carry their behaviour: the loop, the run and the CLI read spec flags and never name a
method, and every CLI default comes from the library's config dataclasses."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import mirkit.cli.tune_cmd
import mirkit.tune
from mirkit.cli.main import build_parser
from mirkit.cli.options import cli_fields
from mirkit.errors import ConfigError
from mirkit.options import flag_name
from mirkit.tune import METHODS, TuneConfig, get_method

#: every module of the tune package outside tune/methods (where each method lives), and the tune command
OUTSIDE_METHODS = [importlib.import_module(f"mirkit.tune.{m.name}") for m in pkgutil.iter_modules(mirkit.tune.__path__)
                   if m.name != "methods"] + [mirkit.cli.tune_cmd]


def test_the_scan_covers_every_module_that_runs_a_method():
    names = {m.__name__ for m in OUTSIDE_METHODS}
    assert {"mirkit.tune.loop", "mirkit.tune.run", "mirkit.tune.timed_loop", "mirkit.tune.timed",
            "mirkit.tune.inference", "mirkit.tune.predict", "mirkit.cli.tune_cmd"} <= names


@pytest.mark.parametrize("module", OUTSIDE_METHODS, ids=lambda m: m.__name__)
def test_no_method_is_named_outside_its_module(module):
    text = Path(module.__file__).read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    strings = re.findall(r"""["']([a-z0-9-]+)["']""", code)
    assert not set(strings) & set(METHODS), f"{module.__name__} names methods {set(strings) & set(METHODS)}"


def test_every_cli_default_is_the_library_default():
    args = build_parser().parse_args(["tune"])
    config_classes = {TuneConfig, *(spec.config_cls for _, spec in METHODS.items())}
    checked = 0
    for cls in config_classes:
        for field, _ in cli_fields(cls):
            assert getattr(args, field.name) == field.default, f"{flag_name(field)} of {cls.__name__}"
            checked += 1
    assert checked >= 20


def test_the_cli_builds_the_method_config_it_was_given(monkeypatch):
    seen = {}
    monkeypatch.setattr("mirkit.tune.tune_task", lambda **kw: seen.update(kw) or {"stopped": True})
    monkeypatch.setattr("mirkit.tune.run.format_tune_summary", lambda summary: "")
    args = build_parser().parse_args(["tune", "--task", "t", "--out", "o", "--encoder", "tiny-test", "--method",
                                      "adapter", "--adapter-size", "7", "--epochs", "4", "--lr", "0.01"])
    assert args.run(args) == 0
    config = seen["config"]
    assert config.method == "adapter" and config.max_epochs == 4 and config.learning_rate == 0.01
    assert config.method_options == get_method("adapter").config_cls(adapter_size=7)


def test_replacing_the_method_gets_the_new_methods_defaults_and_round_trips():
    config = dataclasses.replace(TuneConfig(), method="lora")
    assert config.method_options == get_method("lora").config_cls()
    assert TuneConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()
    # a run written when method options were one flat dict still loads
    old = {**config.to_dict(), "options": {"adapter_size": 64, "lora_rank": 4, "lora_alpha": 16.0, "targets": None}}
    assert TuneConfig.from_dict(old).method_options.lora_rank == 4


def test_bad_method_settings_are_refused_with_the_flag():
    with pytest.raises(ConfigError, match="adapter_mode='diagonal' must be one of 'sequential', 'parallel'"):
        TuneConfig(method="adapter", options=get_method("adapter").config_cls(adapter_mode="diagonal")).validate()
    with pytest.raises(ConfigError, match="takes options of type LoraConfig, not AdapterConfig"):
        TuneConfig(method="lora", options=get_method("adapter").config_cls()).validate()
