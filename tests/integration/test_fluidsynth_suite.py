"""Suite-level tests moved from ``tests/unit/test_fluidsynth.py`` (they build the tiny suite): fluidSynth as the second renderer: batch rendering keeps every clip where its score puts it, the suite"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import requires_package
from tests.unit.test_fluidsynth import RATE

pytestmark = requires_package("tinysoundfont")


def test_the_renderer_perturbation_rerenders_test_clips_from_their_scores(program, tiny_suite, tmp_path):
    from mirkit.robustness.split import perturbed_split

    manifest = perturbed_split(tiny_suite / "key", tmp_path / "rob", "renderer-fluidsynth")
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    tests = [json.loads(line) for line in (tiny_suite / "key" / "manifest.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "test"]
    assert len(rows) == len(tests) and not (manifest.parent / "skipped.jsonl").exists()
    names = [Path(r["path"]).name for r in rows]
    assert len(set(names)) == len(names)  # dotted clip names (chorale-bwv1.6-...) do not collide
    for row, test in zip(rows, tests):
        clean, _ = sf.read(tiny_suite / "key" / test["path"], dtype="float32")
        other, rate = sf.read(manifest.parent / row["path"], dtype="float32")
        assert rate == RATE and other.size == clean.size and row["labels"] == test["labels"]
        assert np.abs(other).max() == pytest.approx(np.abs(clean).max(), rel=1e-3)  # the clip's level
        assert not np.allclose(other, clean, atol=1e-2)  # another renderer: other audio
        assert row["rendering"]["perturbation"] == "renderer-fluidsynth"
