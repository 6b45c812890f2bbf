"""Suite-level tests moved from ``tests/unit/test_data.py`` (they build the tiny suite): the offline suite: builds, validates, is deterministic, and its labels agree with the audio."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mirkit.data.manifest import read_manifest
from mirkit.data.suite import build_suite
from mirkit.data.tasks import SUITE_TASKS, TASKS
from mirkit.data.validate import validate_suite
from mirkit.errors import ConfigError
from mirkit.kinds.key import krumhansl_key
from mirkit.kinds.labels import KEYS
from tests.conftest import requires_package

pytestmark = requires_package("tinysoundfont")


@pytest.fixture(scope="module")
def suite(tiny_suite):
    return tiny_suite


def test_tiny_suite_is_valid_and_split_by_piece(suite):
    assert validate_suite(suite) == []
    info = json.loads((suite / "suite.json").read_text())
    assert set(info["counts"]) == set(SUITE_TASKS) and set(SUITE_TASKS) <= set(TASKS)
    for task in SUITE_TASKS:
        entries = read_manifest(suite / task / "manifest.jsonl")
        assert {e.split for e in entries} == {"train", "valid", "test"}
        assert all((suite / task / e.path).is_file() for e in entries)
    notes = read_manifest(suite / "instrument" / "manifest.jsonl")
    programs = {split: {e.labels["program"] for e in notes if e.split == split} for split in ("train", "test")}
    assert not programs["train"] & programs["test"]  # one soundfont: test programs are unseen


def test_train_and_valid_clips_vary_in_level_tilt_and_room_and_test_clips_do_not(suite, tmp_path):
    import soundfile as sf

    from mirkit.data.suite import draw_variation

    entries = read_manifest(suite / "key" / "manifest.jsonl")
    peaks = {"train": [], "valid": [], "test": []}
    for e in entries:
        audio, _ = sf.read(suite / "key" / e.path)
        peak_dbfs = 20 * np.log10(np.abs(audio).max())
        variation = e.rendering.get("variation")
        if e.split == "test":
            assert variation is None and peak_dbfs == pytest.approx(-6.02, abs=0.05)
        else:  # the level recorded is the level in the file (16-bit FLAC: within a few hundredths of a dB)
            assert variation == draw_variation(Path(e.path).stem, seed=0)
            assert peak_dbfs == pytest.approx(variation["peak_dbfs"], abs=0.05)
            assert -30 <= variation["peak_dbfs"] <= -1 and -2 <= variation["tilt_db_per_octave"] <= 2
        peaks[e.split].append(peak_dbfs)
    assert np.ptp(peaks["train"]) > 10  # levels spread over the range
    rooms = [e.rendering["variation"] for e in entries if e.split != "test" and "room_rt60_s" in e.rendering["variation"]]
    assert 0 < len(rooms) < len([e for e in entries if e.split != "test"])  # about half get a room
    info = json.loads((suite / "suite.json").read_text())
    assert info["variation"]["test"].startswith("none") and info["variation"]["train_valid"]["peak_dbfs"] == [-30, -1]
    with pytest.raises(ConfigError, match="built with variation='on'.*--variation on"):
        build_suite(suite="tiny", out_dir=suite, soundfonts="timgm6mb", mma="off", renderers="tinysoundfont", progress=False, variation="off")
    plain = tmp_path / "plain"
    build_suite(suite="tiny", out_dir=plain, soundfonts="timgm6mb", mma="off", renderers="tinysoundfont", progress=False, variation="off")
    for e in read_manifest(plain / "key" / "manifest.jsonl"):
        assert "variation" not in e.rendering
        assert 20 * np.log10(np.abs(sf.read(plain / "key" / e.path)[0]).max()) == pytest.approx(-6.02, abs=0.05)
    assert validate_suite(plain) == []


def test_build_is_deterministic_for_a_seed(suite, tmp_path):
    again = tmp_path / "again"
    build_suite(suite="tiny", out_dir=again, soundfonts="timgm6mb", mma="off", renderers="tinysoundfont", progress=False, workers=1)
    first = json.loads((suite / "suite.json").read_text())["manifest_sha256"]
    assert json.loads((again / "suite.json").read_text())["manifest_sha256"] == first
    other = tmp_path / "other"
    build_suite(suite="tiny", out_dir=other, soundfonts="timgm6mb", mma="off", renderers="tinysoundfont", progress=False, seed=1)
    assert json.loads((other / "suite.json").read_text())["manifest_sha256"] != first


def test_validate_reports_each_kind_of_problem(suite, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(suite, broken)
    entries = read_manifest(broken / "key" / "manifest.jsonl")
    (broken / "key" / entries[0].path).write_bytes(b"garbage")
    lines = (broken / "genre" / "manifest.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["labels"]["genre"] = "polka"
    lines[0] = json.dumps(record)
    (broken / "genre" / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    problems = validate_suite(broken)
    text = "\n".join(problems)
    assert "checksum differs from the manifest" in text and "cannot decode" in text
    assert "'polka' is not in the vocabulary (rock, swing" in text and "genre: manifest.jsonl changed" in text
    with pytest.raises(ConfigError, match="has no suite.json"):
        validate_suite(tmp_path)


def test_rendered_notes_have_the_labelled_pitch(suite):
    import librosa

    entries = read_manifest(suite / "pitch" / "manifest.jsonl")[::3]
    hits = 0
    for entry in entries:
        y, rate = sf.read(suite / "pitch" / entry.path)
        f0, voiced, _ = librosa.pyin(y[: int(rate * 1.5)], fmin=30, fmax=2100, sr=rate, frame_length=4096)
        if np.any(voiced):
            hits += abs(librosa.hz_to_midi(np.nanmedian(f0[voiced])) - int(entry.labels["pitch"])) < 0.5
    assert hits / len(entries) >= 0.8, hits  # 95.2% on the quick suite (benchmarks/suite_sanity.py)


def test_rendered_progressions_sound_in_their_labelled_key(suite):
    import librosa

    entries = read_manifest(suite / "key" / "manifest.jsonl")
    hits = sum(krumhansl_key(librosa.feature.chroma_cqt(y=sf.read(suite / "key" / e.path)[0], sr=22050).mean(axis=1))
               == e.labels["key"] for e in entries)
    assert hits / len(entries) >= 0.3, hits  # chance is 1/24; 64.2% on the quick suite


def test_rendered_grooves_have_their_labelled_tempo(suite):
    import librosa

    entries = read_manifest(suite / "tempo" / "manifest.jsonl")
    hits = 0
    for entry in entries:
        y, rate = sf.read(suite / "tempo" / entry.path)
        tempo = float(np.atleast_1d(librosa.beat.beat_track(y=y, sr=rate)[0])[0])
        bpm = entry.labels["bpm"]
        hits += any(abs(tempo - bpm * f) <= 0.04 * bpm * f for f in (1 / 3, 0.5, 1, 2, 3))
    assert hits / len(entries) >= 0.5, hits  # Acc2; 83.8% on the quick suite (8 s clips)


def test_transcription_labels_are_the_rendered_notes(suite):
    from mirkit.data.harmony import piano_roll

    entries = read_manifest(suite / "transcription" / "manifest.jsonl")
    entry = entries[0]
    notes = json.loads((suite / "transcription" / entry.labels["notes"]).read_text())
    roll = np.load(suite / "transcription" / entry.labels["piano_roll"])["roll"]
    assert notes and roll.shape == (88, round(entry.duration_s * 100))
    np.testing.assert_array_equal(roll, piano_roll(notes, duration_s=entry.duration_s))
    first = notes[0]
    assert roll[first["pitch"] - 21, round(first["onset_s"] * 100)] > 0
    y, rate = sf.read(suite / "transcription" / entry.path)
    onset = int(first["onset_s"] * rate)
    assert np.abs(y[onset : onset + rate // 10]).max() > 0.01  # sound where the first note starts


def _key_entries_with_one_split_per_piece(suite, source: str, what: str):
    """The key task's entries from ``source``, after checking that each piece sits in one split."""
    entries = [e for e in read_manifest(suite / "key" / "manifest.jsonl") if e.source == source]
    if not entries:
        pytest.skip(f"music21 is not installed, so the suite has no {what} (scripts/setup.sh installs it)")
    splits: dict[str, set[str]] = {}
    for entry in entries:
        splits.setdefault(entry.piece, set()).add(entry.split)
    assert all(len(s) == 1 for s in splits.values())
    return entries


def test_chorales_share_a_split_per_tune(suite):
    entries = _key_entries_with_one_split_per_piece(suite, "music21:bach-chorale", "chorales")
    assert all(e.labels["key"] in KEYS for e in entries)


def test_folk_songs_share_a_split_per_tune_and_the_cache_grows(suite, tmp_path, monkeypatch):
    entries = _key_entries_with_one_split_per_piece(suite, "music21:essen-folksong", "folk songs")
    assert all(e.labels["key"] in KEYS for e in entries)
    from mirkit.data import folksongs

    monkeypatch.setenv("MIRKIT_CACHE", str(tmp_path))
    few, more = folksongs.load_folksongs(limit=4), folksongs.load_folksongs(limit=8)
    assert json.loads((tmp_path / "essen-v1.json").read_text())["parsed"] == 8
    assert {s.name for s in few} <= {s.name for s in more}


def test_beat_labels_are_the_rendered_grid_and_the_audio_agrees(suite):
    import librosa

    entries = read_manifest(suite / "beat" / "manifest.jsonl")
    tempo = {(suite / "tempo" / e.path).resolve() for e in read_manifest(suite / "tempo" / "manifest.jsonl")}
    assert entries and {(suite / "beat" / e.path).resolve() for e in entries} == tempo  # the tempo grooves' audio
    onsets_near_beats = []
    for entry in entries:
        beats, downbeats = entry.labels["beats"], entry.labels["downbeats"]
        assert beats[0] == 0.0 and beats[-1] < entry.duration_s and downbeats == beats[:: entry.labels["meter"]]
        assert np.allclose(np.diff(beats), 60 / entry.labels["bpm"], atol=0.002)
        y, rate = sf.read(suite / "beat" / entry.path)
        onsets = librosa.onset.onset_detect(y=y, sr=rate, units="time")
        onsets_near_beats.append(np.mean([np.min(np.abs(np.asarray(onsets) - b)) < 0.07 for b in beats]))
    assert np.mean(onsets_near_beats) > 0.6, onsets_near_beats  # something is struck on most labelled beats


def test_chord_labels_are_the_played_chords(suite):
    import librosa

    entries = read_manifest(suite / "chords" / "manifest.jsonl")
    sources = {e.source for e in entries}
    assert sources == {"generated:progression", "music21:bach-chorale"}
    right = total = 0
    for entry in entries:
        if entry.source != "generated:progression":
            continue
        y, rate = sf.read(suite / "chords" / entry.path)
        chroma = librosa.feature.chroma_cqt(y=y, sr=rate, hop_length=512)
        times = librosa.frames_to_time(np.arange(chroma.shape[1]), sr=rate, hop_length=512)
        for start, end, label in entry.labels["chords"]:
            inside = (times >= start + 0.05) & (times < end - 0.05)
            root = label.split(":")[0]
            total += 1
            # the chord's root is among the three strongest pitch classes while it sounds
            right += ("C C# D D# E F F# G G# A A# B".split().index(root) in np.argsort(chroma[:, inside].mean(1))[-3:])
    assert right / total > 0.8, (right, total)
    chorales = [seg[2] for e in entries if e.source == "music21:bach-chorale" for seg in e.labels["chords"]]
    assert sum(label not in ("X", "N") for label in chorales) / len(chorales) > 0.5  # mostly complete chords


def test_validate_catches_bad_beat_and_chord_annotations(suite, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(suite, broken)
    for task, edit in (("beat", lambda labels: labels["beats"].reverse()),
                       ("chords", lambda labels: labels["chords"].append([0.0, 99.0, "C:major7th"]))):
        lines = (broken / task / "manifest.jsonl").read_text().splitlines()
        record = json.loads(lines[0])
        edit(record["labels"])
        lines[0] = json.dumps(record)
        (broken / task / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    text = "\n".join(validate_suite(broken, check_audio=False))
    assert "beat times are not strictly increasing" in text and "overlaps or runs backwards" in text


def test_suite_records_its_inputs_and_a_changed_input_is_named(suite, tmp_path, monkeypatch, caplog):
    from mirkit.data import soundfonts as sf_lib
    from mirkit.data.inputs import external_inputs, input_differences
    from mirkit.files import sha256_file

    inputs = json.loads((suite / "suite.json").read_text())["inputs"]
    assert inputs["soundfonts"]["timgm6mb"]["sha256"] == sha256_file(sf_lib.locate("timgm6mb"))
    assert inputs["packages"]["music21"] and inputs["mma"] is None  # built with mma="off"
    assert input_differences(inputs, external_inputs(soundfonts=["timgm6mb"], mma_home=None)) == []
    # a soundfont file that changed is named on the next build into the same folder
    fake = tmp_path / "TimGM6mb.sf2"
    fake.write_bytes(sf_lib.locate("timgm6mb").read_bytes()[:-16] + b"0" * 16)
    monkeypatch.setattr(sf_lib, "locate", lambda name: fake)
    changed = input_differences(inputs, external_inputs(soundfonts=["timgm6mb"], mma_home=None))
    assert [line.split(":")[0] for line in changed] == ["soundfonts.timgm6mb.sha256"]
    copy = tmp_path / "copy"
    shutil.copytree(suite, copy)
    with caplog.at_level("WARNING"):
        build_suite(suite="tiny", out_dir=copy, soundfonts="timgm6mb", mma="off", renderers="tinysoundfont", progress=False, workers=1)
    assert "soundfonts.timgm6mb.sha256" in caplog.text and "Delete the folder" in caplog.text
