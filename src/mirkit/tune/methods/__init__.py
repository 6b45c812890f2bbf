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
    MethodConfig,
    MethodSpec,
    MethodState,
    apply_method,
    get_method,
    register_method,
)

_NOT_METHODS = {"base", "hooks"}
#: listing order of the built-in methods (cheapest first); any other module here registers after them
_ORDER = ("probe", "finetune", "adapter", "prompt", "lora", "dora", "ia3", "bitfit", "scratch")
#: what ``mirkit tune`` trains unless told: the cheapest, a head on the frozen encoder
DEFAULT_METHOD = _ORDER[0]
_found = {m.name for m in pkgutil.iter_modules(__path__)} - _NOT_METHODS
for _name in [n for n in _ORDER if n in _found] + sorted(n for n in _found - set(_ORDER) if not n.startswith("_")):
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["DEFAULT_METHOD", "METHODS", "MethodConfig", "MethodSpec", "MethodState", "apply_method", "get_method",
           "register_method"]
