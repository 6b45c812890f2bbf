"""A small name -> frozen-spec registry with helpful lookup errors."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Generic, TypeVar

from mirkit.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps lowercase kebab-case names to frozen specs.

    Args:
        kind: what the entries are ("encoder"), used in messages.
        listing_hint: the command that lists the entries, used in messages.
    """

    def __init__(self, kind: str, *, listing_hint: str) -> None:
        self.kind = kind
        self.listing_hint = listing_hint
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if name != name.lower() or " " in name:
            raise ValueError(f"{self.kind} name {name!r} must be lowercase kebab-case")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}.{hint} See `{self.listing_hint}`.") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())
