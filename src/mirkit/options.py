"""Typed settings that the command line is generated from, so each default lives in one place.

A settings dataclass declares its fields with :func:`option`; ``mirkit.cli.options`` turns those
fields into argparse options (flag, type, default, choices, help) and back into the dataclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any


def option(default: Any = None, help: str = "", *, choices: Sequence[str] | None = None, flag: str | None = None,
           cli: bool = True, default_factory: Any = None) -> Any:
    """A dataclass field with command-line metadata.

    Args:
        default: the one default of this setting.
        help: one line for ``--help``.
        choices: allowed values (strings), checked by argparse and by the config's ``validate``.
        flag: the option name without ``--`` when it is not the field name with ``_`` -> ``-``.
        cli: ``False`` keeps the field out of the command line.
    """
    metadata = {"help": help, "choices": tuple(choices) if choices else None, "flag": flag, "cli": cli}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(field: dataclasses.Field) -> str:
    """``--name`` of a field on the command line."""
    return "--" + (field.metadata.get("flag") or field.name.replace("_", "-"))


def check_choices(config: object, *, what: str) -> None:
    """Raise :class:`~mirkit.errors.ConfigError` for a field whose value is not one of its ``choices``."""
    from mirkit.errors import ConfigError

    for field in dataclasses.fields(config):  # type: ignore[arg-type]
        choices = field.metadata.get("choices")
        value = getattr(config, field.name)
        if choices and value not in choices and not (value is None and field.default is None):  # None: unset
            raise ConfigError(f"{what}: {field.name}={value!r} must be one of {', '.join(map(repr, choices))} "
                              f"({flag_name(field)} on the command line).")
