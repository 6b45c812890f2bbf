"""`mirkit data corpus`: provenance, duplicates, exclusions (suite pieces, reserved collections,
Fretsonfire), resume, and a corpus that `mirkit pretrain` reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mirkit.data.corpus import build_corpus
from mirkit.errors import ConfigError


def _user_music(folder: Path) -> Path:
    folder.mkdir(parents=True)
    t = np.arange(44100 * 4) / 44100
    for i, f0 in enumerate((220.0, 330.0)):
        sf.write(folder / f"song{i}.wav", (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32), 44100)
    (folder / "copy.wav").write_bytes((folder / "song0.wav").read_bytes())  # a duplicate under another name
    sf.write(folder / "silence.wav", np.zeros(44100 * 3, dtype=np.float32), 44100)
    sf.write(folder / "blip.wav", (0.3 * np.ones(4410)).astype(np.float32), 44100)  # 0.1 s: too short
    return folder


def test_a_small_corpus_has_provenance_drops_duplicates_and_says_why(tmp_path):
    out = tmp_path / "corpus"
    summary = build_corpus(out_dir=out, hours=0.01, sources=["music21"], add=[_user_music(tmp_path / "mine")],
                           workers=2, soundfonts="timgm6mb", progress=False)
    rows = [json.loads(line) for line in (out / "corpus.jsonl").read_text().splitlines()]
    assert {r["source"] for r in rows} == {"music21", "user"}
    for row in rows:
        assert (out / row["path"]).is_file() and row["licence"] and len(row["sha256"]) == 64
        assert 0 < row["duration_s"] <= 30.0
        data, rate = sf.read(out / row["path"])
        assert rate == 24000 and abs(len(data) / rate - row["duration_s"]) < 0.01
    user = {Path(r["piece"]).name for r in rows if r["source"] == "user"}
    assert len(user & {"song0.wav", "copy.wav"}) == 1 and "song1.wav" in user  # one of the two equal files
    assert summary["duplicates_dropped"] == 1
    skipped = {Path(json.loads(line)["piece"]).name: json.loads(line)["reason"]
               for line in (out / "skipped.jsonl").read_text().splitlines()}
    assert skipped["silence.wav"] == "silent" and skipped["blip.wav"] == "too_short"
    assert summary["hours"] > 0 and summary["soundfonts"] == {"used": ["timgm6mb"], "suite_test": "fluidr3",
                                                              "suite_test_used": False}
    # rerun: every finished piece is reused, nothing is rendered again
    before = {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.ogg")}
    again = build_corpus(out_dir=out, hours=0.01, sources=["music21"], add=[tmp_path / "mine"], workers=2,
                         soundfonts="timgm6mb", progress=False)
    assert again["chunks"] == summary["chunks"]
    assert {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.ogg")} == before
    from mirkit.pretrain.data import read_corpus

    assert len(read_corpus(out)) == summary["chunks"]


def test_fretsonfire_and_bad_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="test-only real recordings"):
        build_corpus(out_dir=tmp_path, sources=["debian"], packages=["fretsonfire-songs-sectoid"], progress=False)
    with pytest.raises(ConfigError, match="unknown corpus source"):
        build_corpus(out_dir=tmp_path, sources=["youtube"], progress=False)
    with pytest.raises(ConfigError, match="hours=0"):
        build_corpus(out_dir=tmp_path, hours=0, progress=False)


def test_mma_grooves_render_as_pieces_of_their_own(tmp_path, monkeypatch):
    from mirkit.data import corpus_render
    from mirkit.data import mma as mma_lib

    if mma_lib.ensure({}) is None:
        pytest.skip("MMA is neither installed nor fetchable from Debian's archive here (apt-get download mma)")
    monkeypatch.setattr(corpus_render, "MMA_PIECES", 3)
    monkeypatch.setattr(corpus_render, "MMA_PIECE_S", 8.0)
    summary = build_corpus(out_dir=tmp_path, hours=0.001, sources=["mma"], workers=1, soundfonts="timgm6mb",
                           progress=False)
    rows = [json.loads(line) for line in (tmp_path / "corpus.jsonl").read_text().splitlines()]
    pieces = list(dict.fromkeys(r["piece"] for r in rows))  # in corpus order: batch by batch
    batches = list(dict.fromkeys(p.rsplit(":", 1)[0] for p in pieces))
    assert batches and all(b.startswith("mma:corpus-seed0-batch") for b in batches)
    assert pieces == [f"{b}:{i:02d}" for b in batches for i in range(3)]  # each batch: its 3 grooves
    assert all(r["source"] == "mma" and r["rendering"]["groove"] and 5 < r["duration_s"] <= 8.5 for r in rows)
    assert "MMA" in rows[0]["licence"] and summary["hours_by_source"]["mma"] > 0


def test_generated_pieces_are_tonal_licence_clean_and_seeded(tmp_path, monkeypatch):
    from mirkit.data import corpus as corpus_lib
    from mirkit.data import corpus_render

    monkeypatch.setattr(corpus_render, "GENERATED_PIECES", 3)
    monkeypatch.setattr(corpus_render, "GENERATED_PIECE_S", (6.0, 9.0))
    summary = build_corpus(out_dir=tmp_path / "a", hours=0.001, sources=["generated"], workers=1,
                           soundfonts="timgm6mb", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "a" / "corpus.jsonl").read_text().splitlines()]
    batches = list(dict.fromkeys(r["piece"].rsplit(":", 1)[0] for r in rows))
    assert batches and all(b.startswith("generated:corpus-seed0-batch") for b in batches)
    assert [r["piece"] for r in rows] == [f"{b}:{i:02d}" for b in batches for i in range(3)]
    assert all(6.0 <= r["duration_s"] <= 9.0 and r["rendering"]["soundfont"] == "timgm6mb" for r in rows)
    assert {r["rendering"]["mode"] for r in rows} <= {"major", "minor"} and all(r["rendering"]["programs"] for r in rows)
    assert list(summary["licences"]) == [corpus_lib.GENERATED_LICENCE] and "third-party" in corpus_lib.GENERATED_LICENCE
    assert summary["soundfonts"]["used"] == ["timgm6mb"] and not summary["soundfonts"]["suite_test_used"]
    # the same seed draws the same music; another seed draws other music
    build_corpus(out_dir=tmp_path / "b", hours=0.001, sources=["generated"], workers=1, soundfonts="timgm6mb",
                 progress=False)
    again = [json.loads(line) for line in (tmp_path / "b" / "corpus.jsonl").read_text().splitlines()]
    assert [r["sha256"] for r in again] == [r["sha256"] for r in rows]
    build_corpus(out_dir=tmp_path / "c", hours=0.001, sources=["generated"], workers=1, soundfonts="timgm6mb",
                 seed=1, progress=False)
    other = [json.loads(line) for line in (tmp_path / "c" / "corpus.jsonl").read_text().splitlines()]
    assert not {r["sha256"] for r in other} & {r["sha256"] for r in rows}


def test_a_failed_tool_run_is_retried_on_the_next_build(tmp_path, monkeypatch):
    from mirkit.data import corpus as corpus_lib
    from mirkit.data import corpus_render

    def flaky(job, out_dir, soundfonts):
        return [], {"piece": job.piece, "reason": "mma_failed", "message": "MMA failed"}

    monkeypatch.setattr(corpus_lib, "GENERATED_BATCHES", 1)
    monkeypatch.setattr(corpus_render, "_render_generated_batch", flaky)
    build_corpus(out_dir=tmp_path, sources=["generated"], workers=1, soundfonts="timgm6mb", progress=False)
    build_corpus(out_dir=tmp_path, sources=["generated"], workers=1, soundfonts="timgm6mb", progress=False)
    # not marked done: the second build tried again (workers are processes: the skip records count the calls)
    assert [json.loads(line)["reason"] for line in (tmp_path / "skipped.jsonl").read_text().splitlines()] == \
        ["mma_failed", "mma_failed"]


def test_variation_and_renderers_vary_what_the_corpus_hears(tmp_path, monkeypatch, program):
    import soundfile as sf

    from mirkit.data import corpus_render

    monkeypatch.setattr(corpus_render, "GENERATED_PIECES", 6)
    monkeypatch.setattr(corpus_render, "GENERATED_PIECE_S", (6.0, 8.0))
    plain = build_corpus(out_dir=tmp_path / "plain", hours=0.001, sources=["generated"], workers=1,
                         soundfonts="timgm6mb", progress=False)
    varied = build_corpus(out_dir=tmp_path / "varied", hours=0.001, sources=["generated"], workers=1,
                          soundfonts="timgm6mb", renderers="tinysoundfont,fluidsynth", variation=True, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "varied" / "corpus.jsonl").read_text().splitlines()]
    assert {r["rendering"]["renderer"] for r in rows} == {"tinysoundfont", "fluidsynth"}
    assert all(-30.0 <= r["rendering"]["variation"]["peak_dbfs"] <= -1.0 for r in rows)
    for row in rows[:4]:  # each piece peaks at its drawn level
        audio, _ = sf.read(tmp_path / "varied" / row["path"], dtype="float32")
        peak_db = 20 * np.log10(np.abs(audio).max())
        assert abs(peak_db - row["rendering"]["variation"]["peak_dbfs"]) < 1.0  # Vorbis moves peaks a little
    assert varied["rendering"]["variation"] and set(varied["rendering"]["renderers_used"]) == {"tinysoundfont", "fluidsynth"}
    assert plain["rendering"] == {"renderers_asked": ["tinysoundfont"], "variation": False,
                                  "renderers_used": {"tinysoundfont": plain["chunks"]}}
