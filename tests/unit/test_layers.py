"""Imports flow one way: against the layer order in ``mirkit/__init__.py``, with no module cycles."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import mirkit

ROOT = Path(__file__).resolve().parents[2]


def _health():
    spec = importlib.util.spec_from_file_location("code_health", ROOT / "scripts" / "code_health.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("code_health", module)
    spec.loader.exec_module(module)
    return module


def _layers() -> dict[str, int]:
    doc = mirkit.__doc__ or ""
    block = doc.split("Layers:\n", 1)[1].split("\n\n", 1)[0]
    return {name: rank for rank, line in enumerate(block.splitlines()) for name in line.split()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "mirkit"


def _graph() -> dict[str, set[str]]:
    health = _health()
    files = sorted((ROOT / "src" / "mirkit").rglob("*.py"))
    modules = {health.module_name(p) for p in files}
    return {health.module_name(p): health.import_edges(ast.parse(p.read_text()), health.module_name(p), modules,
                                                       top_only=False) for p in files}


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    bad = []
    for module, targets in graph.items():
        here = _package(module)
        if here == "mirkit":
            continue  # the package's own __init__ is the facade (``mirkit.analyze``), importing inside functions
        for target in targets:
            there = _package(target)
            if there in (here, "mirkit"):
                continue
            if layers[there] >= layers[here]:
                bad.append(f"{module} imports {target} ({there} is not below {here})")
    return sorted(bad)


def test_every_package_has_a_layer():
    layers = _layers()
    packages = {_package(m) for m in _graph()} - {"mirkit"}
    assert packages - set(layers) == set(), "add these packages to the Layers block of mirkit/__init__.py"
    assert set(layers) - packages == set(), "the Layers block names packages that do not exist"


def test_no_upward_imports():
    assert upward_imports(_graph(), _layers()) == []


def test_no_import_cycles():
    assert _health().cycles(_graph()) == []


def test_the_checks_can_fail():
    layers = {"errors": 0, "files": 1, "bench": 2}
    graph = {"mirkit.files": {"mirkit.bench.report"}, "mirkit.bench.report": {"mirkit.files"}}
    assert upward_imports(graph, layers) == ["mirkit.files imports mirkit.bench.report (bench is not below files)"]
    assert _health().cycles(graph) == [["mirkit.bench.report", "mirkit.files"]]
    same_line = {"tune": 3, "retrieval": 3}
    assert upward_imports({"mirkit.tune.run": {"mirkit.retrieval.model"}}, same_line)
