"""Benchmarks and scripts import only names mirkit has (they are not run by the default tier)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("scripts/*.py")])


def mirkit_imports(path: Path) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mirkit"):
            found += [(node.module, alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_imported_names_exist(path):
    missing = [f"{module}.{name}" for module, name in mirkit_imports(path)
               if not hasattr(importlib.import_module(module), name)
               and importlib.util.find_spec(f"{module}.{name}") is None]
    assert missing == [], f"{path.name} imports names mirkit does not have"


def test_the_check_finds_a_missing_name(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("def main():\n    from mirkit.features.store import no_such_helper\n")
    assert mirkit_imports(script) == [("mirkit.features.store", "no_such_helper")]
    assert not hasattr(importlib.import_module("mirkit.features.store"), "no_such_helper")
