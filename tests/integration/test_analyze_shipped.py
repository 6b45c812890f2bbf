"""The heads shipped in the package: complete, small, loadable, and `mirkit analyze` runs them on new audio."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from tests.conftest import requires_package

pytestmark = [requires_package("musicnn"), requires_package("basic_pitch")]


def test_the_shipped_bundle_is_complete_and_within_its_size_limit():
    from mirkit.analysis.bundle import ANALYSIS_TASKS, SHIPPED, Bundle
    from mirkit.analysis.train import MAX_BUNDLE_BYTES
    from mirkit.encoders.zoo import get_spec

    bundle = Bundle.load()
    assert bundle.tasks == list(ANALYSIS_TASKS)
    size = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert 0 < size <= MAX_BUNDLE_BYTES
    assert (SHIPPED / "MODEL_CARD.md").is_file()
    for task in bundle.tasks:
        entry = bundle.entry(task)
        get_spec(entry.encoder)  # every head reads an encoder that mirkit knows
        assert entry.seeds == len(list((SHIPPED / task / "models").iterdir()))
        # chosen on validation: no candidate had a better validation score
        candidates = bundle.info["tasks"][task]["candidates"]
        assert entry.scores["valid"] == max(c["valid"] for c in candidates)


def test_mirkit_analyze_runs_the_shipped_heads_on_new_audio(tmp_path):
    from mirkit.cli.main import main

    rate = 22050
    t = np.arange(8 * rate) / rate
    clicks = (np.sin(2 * np.pi * 440 * t) * (np.mod(t, 0.5) < 0.08)).astype(np.float32) * 0.5
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "song.wav", clicks, rate)
    assert main(["analyze", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "out" / "song.json").read_text())
    assert set(result) >= {"key", "beats", "chords", "notes", "instrument", "tags"}
    assert 40 <= result["beats"]["tempo_bpm"] <= 250 and (tmp_path / "out" / "song.mid").is_file()
