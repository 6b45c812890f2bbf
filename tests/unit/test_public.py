"""Public-dataset adapters on tiny fake trees that mimic each layout."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from mirkit.data.manifest import read_manifest
from mirkit.data.public import DatasetLayoutError, adapt, normalise_key


def test_nsynth(tmp_path):
    for folder in ("nsynth-train", "nsynth-valid", "nsynth-test"):
        (tmp_path / folder / "audio").mkdir(parents=True)
        examples = {f"guitar_acoustic_001-0{p}-100": {"instrument_family_str": "guitar", "pitch": p,
                                                      "instrument_str": "guitar_acoustic_001"} for p in (60, 62)}
        (tmp_path / folder / "examples.json").write_text(json.dumps(examples))
    counts = adapt("nsynth", root=tmp_path, out_dir=tmp_path / "out")
    assert counts == {"nsynth-instrument": 6, "nsynth-pitch": 6}
    entries = read_manifest(tmp_path / "out" / "nsynth-pitch" / "manifest.jsonl")
    assert Counter(e.split for e in entries) == {"train": 2, "valid": 2, "test": 2}
    assert {e.labels["pitch"] for e in entries} == {"60", "62"} and entries[0].path.endswith(".wav")
    (tmp_path / "nsynth-valid" / "examples.json").write_text("{broken")
    with pytest.raises(DatasetLayoutError, match=r"nsynth-valid/examples.json is not valid JSON"):
        adapt("nsynth", root=tmp_path, out_dir=tmp_path / "out")


def test_mtt_top_tags_and_12_1_3_split(tmp_path):
    header = ["clip_id", "guitar", "rock", "rare", "mp3_path"]
    rows = [header]
    for i, folder in enumerate("0123456789abcdef"):
        rows.append([str(i), "1", "1" if i % 2 else "0", "1" if i == 0 else "0", f"{folder}/artist-album-01-song-0-29.mp3"])
    (tmp_path / "annotations_final.csv").write_text("\n".join("\t".join(r) for r in rows))
    adapt("mtt", root=tmp_path, out_dir=tmp_path / "out")
    entries = read_manifest(tmp_path / "out" / "mtt-tagging" / "manifest.jsonl")
    assert Counter(e.split for e in entries) == {"train": 12, "valid": 1, "test": 3}
    assert entries[1].labels["tags"] == ["guitar", "rock"]
    (tmp_path / "annotations_final.csv").write_text("id\tx\n")
    with pytest.raises(DatasetLayoutError, match="expected a header 'clip_id, <tags...>, mp3_path'"):
        adapt("mtt", root=tmp_path, out_dir=tmp_path / "out")


def test_mtg_jamendo_split0(tmp_path):
    folder = tmp_path / "data" / "splits" / "split-0"
    folder.mkdir(parents=True)
    for name in ("train", "validation", "test"):
        (folder / f"autotagging_top50tags-{name}.tsv").write_text(
            "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"
            "track_1\tartist_1\talbum_1\t14/1.mp3\t212.5\tgenre---rock\tmood/theme---happy\n")
    adapt("mtg-jamendo", root=tmp_path, out_dir=tmp_path / "out", audio_dir=tmp_path / "audio")
    entries = read_manifest(tmp_path / "out" / "mtg-jamendo-top50tags" / "manifest.jsonl")
    assert [e.split for e in entries] == ["train", "valid", "test"]
    assert entries[0].labels["tags"] == ["happy", "rock"] and entries[0].duration_s == 212.5
    assert entries[0].path == str((tmp_path / "audio" / "14/1.mp3").resolve())


def test_giantsteps_key_normalises_flats(tmp_path):
    (tmp_path / "annotations" / "key").mkdir(parents=True)
    (tmp_path / "annotations" / "key" / "10089.LOFI.key").write_text("Eb minor\n")
    (tmp_path / "annotations" / "key" / "10090.LOFI.key").write_text("a major")
    adapt("giantsteps-key", root=tmp_path, out_dir=tmp_path / "out")
    labels = [e.labels["key"] for e in read_manifest(tmp_path / "out" / "giantsteps-key" / "manifest.jsonl")]
    assert labels == ["D# minor", "A major"]
    assert normalise_key("Bb Maj", where="x") == "A# major"
    with pytest.raises(DatasetLayoutError, match="cannot read a key from 'H dur'"):
        normalise_key("H dur", where="x")


def test_gtzan_needs_the_split_lists(tmp_path):
    (tmp_path / "genres" / "blues").mkdir(parents=True)
    (tmp_path / "genres" / "blues" / "blues.00000.au").write_bytes(b"")
    with pytest.raises(DatasetLayoutError, match="train_filtered.txt is missing; expected the fault-filtered GTZAN"):
        adapt("gtzan", root=tmp_path, out_dir=tmp_path / "out", splits_dir=tmp_path)
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}_filtered.txt").write_text("blues/blues.00000.wav\n" if split == "train" else "")
    adapt("gtzan", root=tmp_path, out_dir=tmp_path / "out", splits_dir=tmp_path)
    entries = read_manifest(tmp_path / "out" / "gtzan-genre" / "manifest.jsonl")
    assert len(entries) == 1 and entries[0].path.endswith("blues.00000.au") and entries[0].labels == {"genre": "blues"}


def test_missing_root_is_named(tmp_path):
    with pytest.raises(DatasetLayoutError, match="is not a folder"):
        adapt("nsynth", root=tmp_path / "nope", out_dir=tmp_path / "out")
    with pytest.raises(DatasetLayoutError, match="nsynth-train/examples.json is missing"):
        adapt("nsynth", root=tmp_path, out_dir=tmp_path / "out")
