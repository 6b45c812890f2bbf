"""Search: library scan, incremental LanceDB index, captions, joint model, hybrid search, web API.

Everything runs on synthetic audio with the tiny test encoder and a tiny random text encoder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mirkit.encoders.text import tiny_text_encoder
from mirkit.errors import ConfigError, UnknownNameError
from mirkit.retrieval.captions import CaptionConfig, CaptionSampler, parse_ratios
from mirkit.retrieval.index import IndexConfig, index_library, load_tracks

RATE = 8000
CONFIG = IndexConfig(encoder="tiny-test", pseudo_tags=False, analysis=False)  # analysis: test_analyze_suite


def _clip(kind: str, i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    t = np.arange(RATE) / RATE
    if kind == "tone":
        return (0.4 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32)
    return (0.4 * rng.standard_normal(RATE)).astype(np.float32)


def _tag(path: Path, **tags: str) -> None:
    import mutagen

    audio = mutagen.File(path, easy=True)
    for key, value in tags.items():
        audio[key] = value
    audio.save()


def make_library(root: Path, n: int = 12) -> Path:
    """n tone and n noise clips with title/artist tags; manifest labels (tags, split by piece)."""
    rows = []
    for kind, artist in (("tone", "Alpha"), ("noise", "Beta")):
        for i in range(n):
            path = root / f"{kind}{i:02d}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, _clip(kind, i), RATE)
            _tag(path, title=f"{kind.title()} Song {i}", artist=artist, album=f"{artist} Album")
            split = "test" if i % 4 == 0 else "valid" if i % 4 == 1 else "train"
            rows.append({"path": path.name, "split": split, "labels": {"tags": [kind, "bright" if i % 2 else "dark"]}})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="module")
def text_encoder():
    return tiny_text_encoder()


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    return make_library(tmp_path_factory.mktemp("library"))


@pytest.fixture(scope="module")
def index(library: Path, text_encoder, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("index") / "lib"
    report = index_library(library, db=db, config=CONFIG, progress=False, text_encoder=text_encoder)
    assert report.tracks == 24 and report.added == 24
    return db


def test_index_rows_have_tags_labels_vectors(index: Path):
    rows = load_tracks(index)
    assert len(rows) == 24 and len({r["id"] for r in rows}) == 24
    row = next(r for r in rows if r["title"] == "Tone Song 1")
    assert row["artist"] == "Alpha" and row["album"] == "Alpha Album" and row["split"] == "valid"
    assert row["tags"] == ["tone", "bright"] and row["duration_s"] == pytest.approx(1.0, abs=0.01)
    assert "Tone Song 1 by Alpha from Alpha Album" in row["text"] and "tone, bright" in row["text"]
    assert len(row["audio"]) > 0 and np.isfinite(row["audio"]).all() and len(row["text_vector"]) == 32


def test_rescan_is_incremental(tmp_path: Path, text_encoder):
    root = make_library(tmp_path / "music", n=3)
    db = tmp_path / "db"
    first = index_library(root, db=db, config=CONFIG, progress=False, text_encoder=text_encoder)
    assert (first.added, first.unchanged) == (6, 0)
    again = index_library(root, db=db, config=CONFIG, progress=False, text_encoder=text_encoder)
    assert (again.added, again.updated, again.removed, again.unchanged, again.tracks) == (0, 0, 0, 6, 6)
    (root / "noise00.flac").unlink()
    sf.write(root / "tone01.flac", _clip("tone", 7), RATE)  # changed content, same path
    sf.write(root / "extra.flac", _clip("tone", 9), RATE)  # new
    shutil.copy(root / "noise01.flac", root / "copy.flac")  # same bytes as noise01 -> one track
    (root / "broken.flac").write_bytes(b"not audio at all")
    report = index_library(root, db=db, config=CONFIG, progress=False, text_encoder=text_encoder)
    assert (report.added, report.updated, report.removed, report.tracks) == (1, 1, 1, 6)
    assert report.skipped["duplicate_content"] == 1 and report.skipped["decode_error"] == 1
    titles = {r["title"] for r in load_tracks(db)}
    assert "Extra" in titles and "Noise Song 0" not in titles  # file-name fallback for untagged files


def test_crash_mid_index_leaves_a_usable_index(tmp_path: Path, text_encoder, monkeypatch):
    import mirkit.retrieval.index as index_module

    root = make_library(tmp_path / "music", n=4)
    db = tmp_path / "db"
    calls = {"n": 0}
    original = index_module._Extractor.rows

    def crash_on_second_chunk(self, chunk, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return original(self, chunk, **kwargs)

    monkeypatch.setattr(index_module._Extractor, "rows", crash_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        index_library(root, db=db, config=CONFIG, progress=False, text_encoder=text_encoder, chunk_files=3)
    assert len(load_tracks(db)) == 3  # the first chunk is committed and readable
    monkeypatch.setattr(index_module._Extractor, "rows", original)
    report = index_library(root, db=db, config=CONFIG, progress=False, text_encoder=text_encoder, chunk_files=3)
    assert (report.unchanged, report.added, report.tracks) == (3, 5, 8)


def test_rescan_with_other_settings_is_refused(index: Path, library: Path, text_encoder):
    from mirkit.retrieval.index import default_layer

    other = 0 if default_layer("tiny-test") else 1
    with pytest.raises(ConfigError, match="layer"):
        index_library(library, db=index, config=IndexConfig(encoder="tiny-test", layer=other, pseudo_tags=False,
                                                                             analysis=False),
                      progress=False, text_encoder=text_encoder)


def test_captions_are_seeded_and_come_from_the_sources(index: Path, tmp_path: Path):
    rows = load_tracks(index)
    similar = tmp_path / "similar.json"
    similar.write_text(json.dumps({"Alpha": ["Gamma"]}))
    sampler = CaptionSampler(rows, CaptionConfig(artist_similarity=str(similar)))
    tone = next(r for r in rows if r["artist"] == "Alpha")
    assert sampler.sources(tone) == ["tags", "metadata", "artist"]
    first = [sampler.sample(tone, np.random.default_rng(3)) for _ in range(5)]
    assert first == [sampler.sample(tone, np.random.default_rng(3)) for _ in range(5)]
    captions = {sampler.sample(tone, np.random.default_rng(seed)) for seed in range(200)}
    assert any("Gamma" in c for c in captions) and any("Alpha" in c for c in captions)
    assert any("tone" in c for c in captions) and any("dark" in c or "bright" in c for c in captions)
    only_tags = CaptionSampler(rows, CaptionConfig(ratios=parse_ratios("tags=1")))
    assert all("Alpha" not in only_tags.sample(tone, np.random.default_rng(s)) for s in range(50))
    with pytest.raises(ConfigError, match="SOURCE=RATIO"):
        parse_ratios("mood=1")
    with pytest.raises(ConfigError, match="all caption ratios are 0"):
        CaptionSampler(rows, CaptionConfig(ratios=parse_ratios("tags=0")))


def test_hybrid_search_filters_like_and_artist(index: Path, text_encoder):
    from mirkit.retrieval.search import SearchEngine

    engine = SearchEngine(index, text_encoder=text_encoder)
    hits = engine.search("Noise Song 7", k=5)
    assert hits[0].title == "Noise Song 7" and hits[0].text_rank == 1  # the full-text match wins
    assert engine.search("Noise Song 7", k=5) == hits  # deterministic
    only = engine.search("song", k=24, artist="alpha")
    assert len(only) == 12 and {h.artist for h in only} == {"Alpha"}
    tone = next(r for r in engine.rows if r["title"] == "Tone Song 2")
    similar = engine.like(track_id=tone["id"], k=5)
    assert tone["id"] not in {h.id for h in similar} and similar[0].artist == "Alpha"  # tones sound alike
    assert {h.artist for h in engine.like_artist("Beta", k=5)} == {"Alpha"}
    with pytest.raises(ConfigError, match="k=0"):
        engine.search("x", k=0)
    with pytest.raises(ConfigError, match="characters"):
        engine.search("x" * 501)
    with pytest.raises(ConfigError, match="empty"):
        engine.search("   ")
    with pytest.raises(UnknownNameError, match="Nobody"):
        engine.like_artist("Nobody")


def test_like_an_audio_file_outside_the_index(index: Path, tmp_path: Path, text_encoder):
    from mirkit.retrieval.search import SearchEngine

    engine = SearchEngine(index, text_encoder=text_encoder)
    query = tmp_path / "query.wav"
    sf.write(query, _clip("noise", 99), RATE)
    assert [h.artist for h in engine.like(path=query, k=3)] == ["Beta"] * 3
    encoder = engine._audio_encoder
    tone = tmp_path / "tone.wav"
    sf.write(tone, _clip("tone", 3), RATE)  # a copy of an indexed track under another name
    assert engine.like(path=tone, k=1)[0].title == "Tone Song 3" and engine._audio_encoder is encoder  # built once


def test_train_evaluate_save_load(index: Path, tmp_path: Path, text_encoder):
    import torch

    from mirkit.retrieval.search import SearchEngine
    from mirkit.retrieval.train import SearchTrainConfig, train_search_model

    out = tmp_path / "model"
    config = SearchTrainConfig(epochs=60, patience=60, batch_size=8, dim=16, hidden=32, lr=3e-3)
    summary = train_search_model(db=index, out=out, config=config, text_encoder=text_encoder, progress=False)
    assert summary["tracks"] == {"train": 12, "valid": 6, "test": 6}
    assert {"tag", "tags", "metadata"} <= set(summary["test"])
    assert set(summary["test"]["tag"]) == {"model", "hybrid", "text", "text-no-labels"}
    # tones and noise are trivially separable for the audio tower: "tone" and "noise" retrieve them
    tag = summary["test"]["tag"]["model"]
    assert tag["MRR"] > 0.7, summary["test"]["tag"]
    assert (out / "model.safetensors").is_file() and (out / "metrics.md").is_file()
    engine = SearchEngine(index, model=out, text_encoder=text_encoder)
    hits = engine.search("noise", k=6, weights=(1.0, 0.0))
    assert sum(h.artist == "Beta" for h in hits) >= 5
    with torch.no_grad():  # the saved model reproduces the trained one
        again = SearchEngine(index, model=out, text_encoder=text_encoder)
    assert np.allclose(again.audio_space, engine.audio_space)
    # no text LoRA: a later process encodes queries from the ONNX card (recorded by the first engine)
    SearchEngine(index, text_encoder=text_encoder, text_runtime="onnxruntime")
    fast = SearchEngine(index, model=out)
    assert fast.text_encoder.runtime == "onnxruntime" and type(fast.text_encoder).__name__ == "OnnxTextEncoder"
    assert [h.id for h in fast.search("noise", k=6, weights=(1.0, 0.0))] == [h.id for h in hits]
    # and a command-line query with the model needs no torch: the audio side is cached in the snapshot
    import subprocess
    import sys

    script = ("import json, sys\nfrom mirkit.cli.main import main\n"
              f"sys.argv = ['mirkit', 'search', 'noise', '--db', {str(index)!r}, '--model', {str(out)!r}, '--json']\n"
              "code = main()\nprint(json.dumps([code, sorted(m for m in ('torch', 'transformers') if m in sys.modules)]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout.strip().splitlines()[-1]) == [0, []], done.stderr


def test_caption_bank_is_drawn_once_and_feeds_every_step(index: Path, tmp_path: Path, text_encoder, monkeypatch):
    from mirkit.retrieval.captions import CaptionSampler
    from mirkit.retrieval.train import (
        CaptionBank,
        SearchTrainConfig,
        train_search_model,
    )

    draws, picked, banks = [], [], []
    sample = CaptionSampler.sample
    monkeypatch.setattr(CaptionSampler, "sample", lambda self, track, rng: draws.append(1) or sample(self, track, rng))
    pick, draw = CaptionBank.pick, CaptionBank.draw.__func__

    def recording_pick(self, batch, rng):
        texts, vectors = pick(self, batch, rng)
        picked.append((texts, vectors, [self.texts.index(t) for t in texts]))
        return texts, vectors

    monkeypatch.setattr(CaptionBank, "pick", recording_pick)
    monkeypatch.setattr(CaptionBank, "draw", classmethod(lambda cls, *a, **kw: banks.append(draw(cls, *a, **kw)) or banks[-1]))
    config = SearchTrainConfig(epochs=3, patience=3, batch_size=8, dim=8, hidden=16, caption_bank=5)
    summary = train_search_model(db=index, out=tmp_path / "bank", config=config, text_encoder=text_encoder, progress=False)
    assert len(draws) == 12 * 5  # drawn once per training track, never during the steps
    assert summary["caption_bank"]["per_track"] == 5 and summary["caption_bank"]["distinct_captions"] == len(banks[0].texts)
    assert len(picked) == 3 * 2  # 12 tracks, batch 8: two steps per epoch
    fresh = text_encoder.encode([t for texts, _, _ in picked for t in texts])
    bank_vectors = np.concatenate([v.numpy() for _, v, _ in picked])
    assert np.allclose(fresh, bank_vectors, atol=1e-5)  # each step's vectors are its captions' MiniLM vectors
    draws.clear()
    config = SearchTrainConfig(epochs=2, patience=2, batch_size=8, dim=8, hidden=16, caption_bank=0)
    summary = train_search_model(db=index, out=tmp_path / "fresh", config=config, text_encoder=text_encoder, progress=False)
    assert len(draws) == 2 * 12 and summary["caption_bank"]["per_track"] == 0  # one fresh caption per track per step


def test_train_with_text_lora_saves_only_adapter(index: Path, tmp_path: Path):
    from safetensors.torch import load_file

    from mirkit.retrieval.train import SearchTrainConfig, train_search_model

    encoder = tiny_text_encoder()
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    config = SearchTrainConfig(epochs=3, patience=3, batch_size=8, dim=8, hidden=16, text_lora_rank=2)
    train_search_model(db=index, out=tmp_path / "m", config=config, text_encoder=encoder, progress=False)
    saved = load_file(str(tmp_path / "m" / "model.safetensors"))
    lora = [k for k in saved if k.startswith("text_encoder.")]
    assert lora and all("lora_" in k for k in lora)
    base = {k.replace("base_layer.", ""): v for k, v in encoder.model.get_base_model().state_dict().items()
            if "lora_" not in k}
    assert set(base) == set(before)
    changed = [k for k, v in before.items() if not torch_equal(base[k], v)]
    assert changed == []  # the base MiniLM weights are untouched


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_web_api_serves_only_indexed_audio(index: Path, text_encoder):
    from fastapi.testclient import TestClient

    from mirkit.retrieval.search import SearchEngine
    from mirkit.web.app import create_app

    engine = SearchEngine(index, text_encoder=text_encoder)
    client = TestClient(create_app(engine))
    page = client.get("/")
    assert page.status_code == 200 and "search-form" in page.text
    results = client.get("/api/search", params={"q": "Tone Song 5", "k": 3}).json()["results"]
    assert results[0]["title"] == "Tone Song 5"
    audio = client.get(f"/audio/{results[0]['id']}")
    assert audio.status_code == 200 and audio.content == Path(engine.audio_path(results[0]["id"])).read_bytes()
    assert client.get("/audio/" + "0" * 32).status_code == 404
    for attack in ("..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd", "....//....//etc/passwd"):
        assert client.get(f"/audio/{attack}").status_code == 404
    assert client.get("/api/search", params={"q": "x", "k": 1000}).status_code == 422
    assert client.get("/api/search", params={"q": "x" * 501}).status_code == 422
    like = client.get(f"/api/like/{results[0]['id']}").json()["results"]
    assert results[0]["id"] not in {hit["id"] for hit in like}
    facets = client.get("/api/facets").json()
    assert facets["artists"] == ["Alpha", "Beta"] and facets["tracks"] == 24
    assert client.get("/api/artist", params={"name": "Nobody"}).status_code == 404


def test_two_folders_in_one_index(tmp_path: Path, text_encoder):
    first = make_library(tmp_path / "a", n=2)
    second = tmp_path / "b"
    second.mkdir()
    sf.write(second / "other.flac", _clip("tone", 42), RATE)
    shutil.copy(first / "tone00.flac", second / "same-as-a.flac")
    db = tmp_path / "db"
    index_library(first, db=db, config=CONFIG, progress=False, text_encoder=text_encoder)
    report = index_library(second, db=db, config=CONFIG, progress=False, text_encoder=text_encoder)
    assert (report.added, report.removed, report.tracks) == (1, 0, 5)  # folder a's rows are kept
    assert report.skipped["duplicate_content"] == 1
    again = index_library(first, db=db, config=CONFIG, progress=False, text_encoder=text_encoder)
    assert (again.unchanged, again.removed, again.tracks) == (4, 0, 5)
