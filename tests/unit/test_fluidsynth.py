"""FluidSynth as the second renderer: batch rendering keeps every clip where its score puts it, the suite
renders about half of its train/valid clips with it (never the test split), and ``mirkit robustness``
re-renders test clips from their scores. Needs the ``fluidsynth`` program (on PATH, or fetched from
Debian's archive by mirkit); skipped with the reason where neither works."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from mirkit.data import fluidsynth
from mirkit.data.render import Score, score_from_dict, score_to_dict
from mirkit.errors import ConfigError
from tests.conftest import requires_package

pytestmark = requires_package("tinysoundfont")
RATE = 22050


def _onset_s(audio: np.ndarray) -> float:
    return float(np.argmax(np.abs(audio) > 0.02 * np.abs(audio).max()) / RATE)


def test_scores_rendered_in_one_run_keep_their_timing_length_and_silence(program):
    from mirkit.data.soundfonts import locate

    scores = []
    for i, onset in enumerate((0.25, 1.0, 0.5)):
        score = Score(duration_s=2.0 + 0.37 * i, programs={0: 8 * i})
        score.add(0, 60 + i, onset, 5.0)  # held past the clip's end: cut there, not carried into the next slot
        scores.append(score)
    scores.append(Score(duration_s=1.5, programs={0: 0}))  # no notes at all: must stay silent
    clips = fluidsynth.render_scores(scores, soundfont=locate("timgm6mb"), sample_rate=RATE, program=program)
    assert [c.size for c in clips] == [int(round(s.duration_s * RATE)) for s in scores]
    for clip, onset in zip(clips[:3], (0.25, 1.0, 0.5)):
        assert np.abs(clip).max() > 0.01 and _onset_s(clip) == pytest.approx(onset, abs=0.012)
    assert np.abs(clips[3]).max() < 1e-4


def test_a_score_survives_its_json_sidecar():
    score = Score(duration_s=3.0, programs={0: 40, 9: 0})
    score.add(0, 67, 0.1234567, 1.0, velocity=77)
    score.add(9, 36, 0.5, 0.1)
    again = score_from_dict(json.loads(json.dumps(score_to_dict(score))))
    assert again.programs == score.programs and again.duration_s == score.duration_s
    assert [(n.channel, n.pitch, n.velocity) for n in again.notes] == [(0, 67, 77), (9, 36, 90)]
    assert again.notes[0].start_s == pytest.approx(0.1234567, abs=1e-6)


def test_renderer_requests_that_cannot_work_are_refused():
    from mirkit.data.suite_render import choose_renderers

    with pytest.raises(ConfigError, match="unknown.*tinysoundfont,fluidsynth"):
        choose_renderers("timidity", {})
    with pytest.raises(ConfigError, match="must include tinysoundfont"):
        choose_renderers("fluidsynth", {})
    assert choose_renderers("tinysoundfont", {}) == ["tinysoundfont"]


def test_the_suite_renders_about_half_of_train_and_valid_with_fluidsynth_and_never_test(program, tmp_path):
    from mirkit.data.suite import build_suite
    from mirkit.data.validate import validate_suite

    root = tmp_path / "suite"
    build_suite(suite="tiny", out_dir=root, soundfonts="timgm6mb", mma="off", renderers="tinysoundfont,fluidsynth",
                progress=False, workers=2)
    assert validate_suite(root) == []
    info = json.loads((root / "suite.json").read_text())
    assert info["renderers"] == {"train_valid": ["tinysoundfont", "fluidsynth"], "test": "tinysoundfont"}
    assert info["inputs"]["fluidsynth"].startswith("FluidSynth")
    counts: Counter = Counter()
    for line in (root / "instrument" / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        counts[(entry["split"] == "test", entry["rendering"]["renderer"])] += 1
        audio, _ = sf.read(root / "instrument" / entry["path"])
        assert np.abs(audio).max() > 1e-3, entry["path"]  # every clip sounds, whichever renderer made it
        sidecar = (root / "instrument" / entry["path"]).with_suffix(".score.json")
        assert sidecar.is_file() == (entry["split"] == "test")
    assert counts[(True, "fluidsynth")] == 0
    share = counts[(False, "fluidsynth")] / (counts[(False, "fluidsynth")] + counts[(False, "tinysoundfont")])
    assert 0.3 < share < 0.7
    with pytest.raises(ConfigError, match="renderers tinysoundfont,fluidsynth.*--renderers tinysoundfont,fluidsynth"):
        build_suite(suite="tiny", out_dir=root, soundfonts="timgm6mb", mma="off", renderers="tinysoundfont",
                    progress=False)


def test_a_clip_without_a_score_is_named_and_a_missing_renderer_fails_before_work(tmp_path, monkeypatch):
    from mirkit.robustness import perturb

    clip = tmp_path / "clip.flac"
    sf.write(clip, np.zeros(RATE, dtype=np.float32) + 0.1, RATE)
    monkeypatch.setattr(fluidsynth, "ensure", lambda status: status.update(fluidsynth="unavailable: test") or None)
    with pytest.raises(ConfigError, match="renderer-fluidsynth needs FluidSynth, which is unavailable: test"):
        perturb.resolve_perturbations(["room", "renderer-fluidsynth"])
    assert "renderer-fluidsynth" not in perturb.resolve_perturbations(None)  # the default leaves it out
    assert "room" in perturb.resolve_perturbations(None)
    monkeypatch.undo()
    status: dict[str, str] = {}
    if fluidsynth.ensure(status) is None:
        pytest.skip(f"renderer tier: {status['fluidsynth']}")
    with pytest.raises(ConfigError, match="clip.flac has no score.*Rebuild the suite"):
        perturb.perturb_file(clip, tmp_path / "out" / "clip", perturbation="renderer-fluidsynth", clip="clip.flac")
