"""Generated tunes of the key task and the grown single notes of the instrument task (issue #34)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("mode", ["ionian", "mixolydian", "aeolian", "dorian", "harmonic"])
@pytest.mark.parametrize("texture", ["solo", "vamp", "drone"])
def test_a_tune_stays_in_its_mode_and_ends_on_its_tonic(mode, texture):
    from mirkit.data.tunes import MODES, tune_score

    tonic = 7
    score = tune_score(tonic=tonic, mode=mode, texture=texture, rhythm="reel", seed=3, duration_s=10.0,
                       melody_program=40, backing_program=0, bpm=110.0)
    scale = {(tonic + s) % 12 for s in MODES[mode][0]}
    assert {n.pitch % 12 for n in score.notes} <= scale  # e.g. an aeolian tune never plays a raised 7th
    melody = [n for n in score.notes if n.channel == 0]
    assert max(melody, key=lambda n: n.start_s).pitch % 12 == tonic
    assert len(melody) > 12 and score.duration_s <= 11.0
    backing = [n for n in score.notes if n.channel != 0]
    assert (len(backing) == 0) == (texture == "solo")


def test_tune_jobs_keep_transpositions_together_and_label_modes_by_tonic():
    from mirkit.data.tunes import plan_tune_keys

    jobs = plan_tune_keys(pieces=30, keys_per_piece=3, duration_s=8.0, train_soundfonts=["a", "b"],
                          test_soundfont="c", seed=0)
    assert len(jobs) == 90
    split_of: dict[str, set[str]] = {}
    for job in jobs:
        split_of.setdefault(job["piece"], set()).add(job["split"])
        assert (job["soundfont"] == "c") == (job["split"] == "test")
        expected = "major" if job["labels"]["mode"] in ("ionian", "mixolydian") else "minor"
        assert job["labels"]["key"].endswith(expected) and "chords" not in job["labels"]
    assert all(len(s) == 1 for s in split_of.values())
    assert {j["labels"]["texture"] for j in jobs} == {"solo", "vamp", "drone"}
    for split in ("train", "valid", "test"):
        assert {j["labels"]["key"].split()[1] for j in jobs if j["split"] == split} == {"major", "minor"}


def test_single_notes_span_velocities_and_lengths():
    from mirkit.data.notes import HOLDS_S, plan_notes

    jobs = plan_notes(per_instrument=6, train_soundfonts=["a", "b"], test_soundfont="c", seed=0)
    velocities = [j["labels"]["velocity"] for j in jobs]
    assert min(velocities) < 40 and max(velocities) > 115
    assert {j["labels"]["hold_s"] for j in jobs} == set(HOLDS_S)
    for job in jobs[:20]:
        (note,) = job["score"].notes
        assert note.end_s - note.start_s == pytest.approx(job["labels"]["hold_s"])
