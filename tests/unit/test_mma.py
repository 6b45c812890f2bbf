"""MMA grooves: fetched from Debian's archive into the private cache when apt can; skipped (saying why) otherwise."""

from __future__ import annotations

import shutil

import pytest

from mirkit.data.tasks import STYLES, TAGS


@pytest.fixture(scope="module")
def home():
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        pytest.skip("MMA tier: apt-get/dpkg-deb are not on this machine, so the mma package cannot be fetched")
    from mirkit.data import mma

    status: dict[str, str] = {}
    found = mma.ensure(status)
    if found is None:
        pytest.skip(f"MMA tier: {status['mma']}")
    return found


def test_chord_names_follow_the_triad_quality():
    from mirkit.data.mma import chord_name

    assert [chord_name(p) for p in ([0, 4, 7], [9, 0, 4], [11, 2, 5], [1, 5, 8])] == ["C", "Am", "Bdim", "C#"]
    assert set(__import__("mirkit.data.mma", fromlist=["FAMILIES"]).FAMILIES) == set(STYLES)


def test_mma_pieces_are_cut_labelled_and_repeatable(home):
    from mirkit.data.mma import plan_mma_grooves

    kwargs = dict(pieces=16, duration_s=4.0, train_soundfonts=["timgm6mb"], test_soundfont="timgm6mb", seed=3,
                  home=home, tempo_range=(50.0, 220.0), task="tempo")
    jobs = plan_mma_grooves(**kwargs)
    again = plan_mma_grooves(**kwargs)
    assert [j["score"].notes for j in jobs] == [j["score"].notes for j in again]  # MMA's Seed makes it repeatable
    assert {j["labels"]["genre"] for j in jobs} == set(STYLES)
    for job in jobs:
        score, labels = job["score"], job["labels"]
        assert 50 <= labels["bpm"] <= 221 and labels["bpm"] == round(labels["bpm"])  # MMA writes whole BPM
        assert set(labels["tags"]) <= set(TAGS) and score.notes and score.duration_s <= 4.0
        assert all(0 <= n.start_s < score.duration_s and n.end_s <= score.duration_s + 1e-9 for n in score.notes)
    # pieces do not bleed into each other: each starts at its own time zero with its own groove's notes
    assert min(min(n.start_s for n in j["score"].notes) for j in jobs) < 0.05


def test_mma_beats_follow_the_time_signature_mma_wrote(home):
    from mirkit.data.mma import MmaPiece, render_pieces
    from mirkit.kinds.beat import beat_problem

    pieces = [MmaPiece("FrenchWaltz", 120, 0, "major", (0, 3, 4, 0), 6), MmaPiece("68March", 100, 2, "minor", (0, 3, 4, 0), 6),
              MmaPiece("8Beat", 90, 5, "major", (0, 5, 3, 4), 6)]
    rendered = render_pieces(pieces, home=home, duration_s=6.0, seed=1)
    assert [meter for _, _, meter in rendered] == [3, 3, 4]  # 3/4, 6/8 (three quarter notes), 4/4
    from mirkit.data.annotations import beat_grid

    for score, bpm, meter in rendered:
        labels = {"bpm": bpm, **beat_grid(bpm=bpm, beats_per_bar=meter, duration_s=score.duration_s)}
        assert beat_problem(labels, duration_s=score.duration_s) is None
        bass = sorted(n.start_s for n in score.notes if n.channel != 9)
        assert bass and min(abs(bass[0] - b) for b in labels["downbeats"]) < 0.02  # the music starts on a downbeat
