"""Command-line options generated from settings dataclasses (fields declared with ``mirkit.options.option``).

Each field becomes ``--flag`` with the field's type, default, choices and help; a ``bool`` field
that defaults to ``False`` becomes a switch. Several dataclasses may declare the same field (for
example ``targets`` in every method that targets modules): it becomes one option, and they must
agree on its type and default.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Iterable

from mirkit.options import flag_name


def _scalar_type(hint: object) -> type:
    """``int`` for ``int`` or ``int | None`` (and so on)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    found = args[0] if args else hint
    if found not in (int, float, str, bool):
        raise TypeError(f"option type {hint!r} is not supported on the command line")
    return found  # type: ignore[return-value]


def cli_fields(cls: type) -> list[tuple[dataclasses.Field, type]]:
    """The fields of ``cls`` that appear on the command line, with their scalar types."""
    hints = typing.get_type_hints(cls)
    return [(f, _scalar_type(hints[f.name])) for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]


def add_options(group: argparse._ActionsContainer, classes: Iterable[type], *,
                users: dict[type, str] | None = None) -> None:
    """Add one option per command-line field of ``classes`` to ``group``.

    Args:
        users: optional label per class (e.g. the methods using it), appended to the help in brackets.
    """
    seen: dict[str, tuple[dataclasses.Field, type, list[str]]] = {}
    for cls in classes:
        for field, kind in cli_fields(cls):
            flag = flag_name(field)
            if flag in seen:
                other, other_kind, labels = seen[flag]
                if (other.default, other_kind) != (field.default, kind):
                    raise TypeError(f"{flag} is declared twice with different defaults or types "
                                    f"({other.default!r}/{other_kind.__name__} vs {field.default!r}/{kind.__name__})")
            else:
                seen[flag] = (field, kind, [])
            if users and users.get(cls) and users[cls] not in seen[flag][2]:
                seen[flag][2].append(users[cls])
    for flag, (field, kind, labels) in seen.items():
        help_text = field.metadata.get("help", "") + (f" [{', '.join(labels)}]" if labels else "")
        if kind is bool and field.default is False:
            group.add_argument(flag, dest=field.name, action="store_true", help=help_text)
            continue
        default = None if field.default is dataclasses.MISSING else field.default
        group.add_argument(flag, dest=field.name, type=kind, default=default, choices=field.metadata.get("choices"),
                           help=help_text + (f" (default {default})" if default is not None else ""))


def config_from_args(cls: type, args: argparse.Namespace, **fixed: object):
    """``cls(**values)`` from the parsed options of its command-line fields, plus ``fixed`` ones."""
    values = {f.name: getattr(args, f.name) for f, _ in cli_fields(cls) if hasattr(args, f.name)}
    return cls(**values, **fixed)
