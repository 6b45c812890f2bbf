"""Transfer methods: one module per method, each registering a :class:`MethodSpec` in :data:`METHODS`.

Every module of this package except ``base`` and ``hooks`` is a method and is imported here, so a
new method is one new file (its config dataclass, ``apply`` and ``register_method`` call) plus its
test. The loop, the run and the command line read the spec's flags and never name a method.
"""

from __future__ import annotations

import importlib
import pkgutil

from mirkit.tune.methods.base import (
    METHODS,
    TARGETS,
    MethodConfig,
    MethodSpec,
    MethodState,
    apply_method,
    get_method,
    register_method,
)

_NOT_METHODS = {"base", "hooks"}
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name not in _NOT_METHODS and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["METHODS", "TARGETS", "MethodConfig", "MethodSpec", "MethodState", "apply_method", "get_method",
           "register_method"]
