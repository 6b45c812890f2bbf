"""Public-dataset adapters on tiny fake trees that mimic each layout."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

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


def test_giantsteps_mtg_key_keeps_confident_single_keys(tmp_path):
    (tmp_path / "annotations").mkdir()
    rows = ["ID\tMANUAL KEY\tC", "5061\tD# minor\t2", "5881\tA major\t2", "7217\tF minor\t1", "10981\t-\t0",
            "61578\tC minor / F# minor\t2", "11077\tBb minor\t2"]
    rows += [f"{100 + i}\tC major\t2" for i in range(40)]
    (tmp_path / "annotations" / "annotations.txt").write_text("\n".join(rows) + "\n")
    adapt("giantsteps-mtg-key", root=tmp_path, out_dir=tmp_path / "out")
    entries = read_manifest(tmp_path / "out" / "giantsteps-mtg-key" / "manifest.jsonl")
    keys = {Path(e.path).name.split(".")[0]: e.labels["key"] for e in entries}
    assert keys["5061"] == "D# minor" and keys["11077"] == "A# minor"
    assert not {"7217", "10981", "61578"} & set(keys)  # low confidence, unknown, two keys
    assert {e.split for e in entries} == {"train", "valid"} and entries[0].path.endswith(".LOFI.mp3")
    (tmp_path / "annotations" / "annotations.txt").write_text("id,key\n")
    with pytest.raises(DatasetLayoutError, match="expected the header 'ID, MANUAL KEY, C'"):
        adapt("giantsteps-mtg-key", root=tmp_path, out_dir=tmp_path / "out")


def test_emomusic_uses_the_mediaeval_sets(tmp_path):
    (tmp_path / "annotations").mkdir()
    info = ["song_id,file_name,Artist,Song title,Mediaeval 2013 set"]
    info += [f"{i},{i}.mp3,a,t,{'evaluation' if i % 5 == 0 else 'development'}" for i in range(2, 42)]
    (tmp_path / "annotations" / "songs_info.csv").write_text("\n".join(info) + "\n")
    static = ["song_id, mean_arousal, std_arousal, mean_valence, std_valence"]
    static += [f"{i},{3 + i / 20},1,{6 - i / 20},1" for i in range(2, 41)]  # song 41 has no annotation
    (tmp_path / "annotations" / "static_annotations.csv").write_text("\n".join(static) + "\n")
    (tmp_path / "clips_45seconds").mkdir()
    counts = adapt("emomusic", root=tmp_path, out_dir=tmp_path / "out")
    entries = read_manifest(tmp_path / "out" / "emomusic-emotion" / "manifest.jsonl")
    assert counts == {"emomusic-emotion": 39} and {e.split for e in entries} == {"train", "valid", "test"}
    by_song = {Path(e.path).stem: e for e in entries}
    assert by_song["10"].split == "test" and by_song["10"].labels["arousal_valence"] == [3.5, 5.5]
    assert by_song["3"].split in ("train", "valid") and by_song["3"].path.endswith("clips_45seconds/3.mp3")
    from mirkit.data.task_folder import load_task

    task = load_task(tmp_path / "out" / "emomusic-emotion")  # its kind from task.json, written by the adapter
    assert (task.kind.name, task.label, task.name) == ("regression", "arousal_valence", "emomusic-emotion")
    assert (tmp_path / "out" / "emomusic-emotion" / "task.json").is_file()
    (tmp_path / "annotations" / "static_annotations.csv").write_text("song_id,arousal\n1,2\n")
    with pytest.raises(DatasetLayoutError, match=r"columns \['mean_arousal', 'mean_valence'\] are missing"):
        adapt("emomusic", root=tmp_path, out_dir=tmp_path / "out")


def test_vocalset_splits_technique_by_singer_and_singer_by_exercise(tmp_path):
    singers = [f"f{i}" for i in range(1, 10)] + [f"m{i}" for i in range(1, 12)]
    for who in singers:
        for tech in ("belt", "vibrato", "fast_forte"):
            for vowel in "aeiou":
                path = tmp_path / "FULL" / who / "arpeggios" / tech / f"{who}_arpeggios_{tech}_{vowel}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"")
    test = ["f2", "f8", "m3", "m5", "m10"]
    (tmp_path / "test_singers_technique.txt").write_text("\n".join(f"female{s[1:]}" if s[0] == "f" else s for s in test))
    (tmp_path / "train_singers_technique.txt").write_text("\n".join(s for s in singers if s not in test))
    adapt("vocalset", root=tmp_path, out_dir=tmp_path / "out")
    technique = read_manifest(tmp_path / "out" / "vocalset-technique" / "manifest.jsonl")
    assert {e.labels["technique"] for e in technique} == {"belt", "vibrato"}  # fast_forte is not one of the 10
    split_of = {e.labels["singer"]: e.split for e in technique}
    assert {s for s, split in split_of.items() if split == "test"} == set(test)  # female2 read as f2
    assert Counter(split_of.values())["valid"] == 2
    singer = read_manifest(tmp_path / "out" / "vocalset-singer" / "manifest.jsonl")
    by_piece: dict[str, set[str]] = {}
    for entry in singer:
        by_piece.setdefault(entry.piece, set()).add(entry.split)
    assert len(singer) == 20 * 15 and all(len(s) == 1 for s in by_piece.values())
    assert {e.split for e in singer} == {"train", "valid", "test"}
    (tmp_path / "test_singers_technique.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="test_singers_technique.txt is missing"):
        adapt("vocalset", root=tmp_path, out_dir=tmp_path / "out")
