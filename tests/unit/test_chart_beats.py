"""Beat labels of Frets on Fire charts: the tempo map's beats, shifted to the recording's onsets when they agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

RATE = 22050


def _song(folder: Path, *, bpm: float, meter: bool, delay_ms: int | None = None) -> Path:
    import pretty_midi

    folder.mkdir(parents=True)
    midi = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    if meter:
        midi.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    track = pretty_midi.Instrument(program=30)
    track.notes.append(pretty_midi.Note(velocity=100, pitch=60, start=0.0, end=29.0))
    midi.instruments.append(track)
    midi.write(str(folder / "notes.mid"))
    if not meter:  # pretty_midi writes a 4/4 event by default; a chart without a meter has none
        import mido

        chart = mido.MidiFile(str(folder / "notes.mid"))
        for track_events in chart.tracks:
            track_events[:] = [m for m in track_events if m.type != "time_signature"]
        chart.save(str(folder / "notes.mid"))
    (folder / "song.ini").write_text("[song]\nname = Test\n" + (f"delay = {delay_ms}\n" if delay_ms is not None else ""))
    return folder


def _clicks(times_s, *, duration_s: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    y = 0.01 * rng.standard_normal(int(duration_s * RATE)).astype(np.float32)
    for t in times_s:
        start = int(t * RATE)
        burst = 0.8 * np.exp(-np.arange(800) / 150.0) * rng.standard_normal(800)
        y[start:start + 800] += burst[: len(y[start:start + 800])].astype(np.float32)
    return y


def test_beats_follow_the_recording_when_the_chart_is_late(tmp_path):
    from mirkit.data.chart_beats import chart_beats

    folder = _song(tmp_path / "song", bpm=120, meter=True)
    audio = _clicks(np.arange(0, 30, 0.5) + 0.04, duration_s=30.0)
    labels = chart_beats(folder, audio, sample_rate=RATE)
    alignment = labels["beat_alignment"]
    assert alignment["declared_offset_s"] == 0.0 and alignment["onset_z_best"] > alignment["onset_z_declared"]
    assert alignment["shift_s"] == pytest.approx(0.04, abs=0.012)
    beats = np.array(labels["beats"])
    assert np.allclose(np.diff(beats), 0.5, atol=1e-3) and beats[-1] < 30.0
    assert np.allclose(labels["downbeats"], beats[::4], atol=1e-6)


def test_a_declared_delay_is_applied_and_no_meter_means_no_downbeats(tmp_path):
    from mirkit.data.chart_beats import chart_beats, declared_offset_s

    folder = _song(tmp_path / "song", bpm=100, meter=False, delay_ms=100)
    assert declared_offset_s(folder) == pytest.approx(0.1)
    labels = chart_beats(folder, _clicks(np.arange(0, 30, 0.6) + 0.1, duration_s=30.0), sample_rate=RATE)
    assert "downbeats" not in labels and labels["beats"][0] == pytest.approx(0.1, abs=0.012)
    assert abs(labels["beat_alignment"]["shift_s"]) <= 0.012


def test_the_detector_lag_is_measured_not_assumed():
    from mirkit.data.chart_beats import detector_lag_s

    assert 0.0 < detector_lag_s() < 0.05  # onset strength peaks a frame or two after the attack


def test_noise_without_beats_keeps_the_declared_offset(tmp_path):
    from mirkit.data.chart_beats import chart_beats

    folder = _song(tmp_path / "song", bpm=120, meter=False)
    noise = np.random.default_rng(1).standard_normal(30 * RATE).astype(np.float32) * 0.1
    labels = chart_beats(folder, noise, sample_rate=RATE)
    assert labels["beat_alignment"]["shift_s"] == 0.0 and labels["beats"][0] == 0.0
