"""The query snapshot, the ONNX text card, level envelopes and silence (issue #37).

A command-line search must not import LanceDB, torch or transformers once an index and the
text encoder's ONNX card exist; a silent track (or silent seconds) gives no pseudo-tags.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mirkit.encoders.text import tiny_text_encoder
from mirkit.retrieval.index import SILENCE_DBFS, IndexConfig, audible_mean, index_library
from tests.unit.test_retrieval import make_library

CONFIG = IndexConfig(encoder="tiny-test", pseudo_tags=False, analysis=False)  # analysis: test_analyze_suite


@pytest.fixture(scope="module")
def text_encoder():
    return tiny_text_encoder()


@pytest.fixture(scope="module")
def db(tmp_path_factory, text_encoder) -> Path:
    library = make_library(tmp_path_factory.mktemp("library"), n=6)
    db = tmp_path_factory.mktemp("index") / "lib"
    index_library(library, db=db, config=CONFIG, progress=False, text_encoder=text_encoder)
    return db


def test_snapshot_matches_the_table_and_full_text_keeps_short_words(db: Path, text_encoder):
    from mirkit.retrieval.index import load_tracks
    from mirkit.retrieval.search import SearchEngine
    from mirkit.retrieval.snapshot import read_snapshot

    snapshot = read_snapshot(db)
    rows = load_tracks(db)
    assert [r["id"] for r in snapshot.rows] == [r["id"] for r in rows]
    np.testing.assert_array_equal(snapshot.audio, np.asarray([r["audio"] for r in rows], np.float32))
    engine = SearchEngine(db, text_encoder=text_encoder, text_runtime="torch")
    ranks = engine.text_ranks("Tone Song 3", limit=10)
    best = min(ranks, key=ranks.get)
    assert engine.rows[best]["title"] == "Tone Song 3"  # "3" is a word: it decides between the Tone Songs
    beta = engine.text_ranks("song", limit=50, artist="beta")
    assert beta and all(engine.rows[r]["artist"] == "Beta" for r in beta)
    assert engine.text_ranks("zzzz qqqq", limit=10) == {}


def test_a_scan_that_dies_leaves_no_stale_snapshot(db: Path, text_encoder, tmp_path: Path):
    import shutil

    from mirkit.retrieval.search import SearchEngine
    from mirkit.retrieval.snapshot import FOLDER, MARK, invalidate

    copy = tmp_path / "lib"
    shutil.copytree(db, copy)
    before = SearchEngine(copy, text_encoder=text_encoder, text_runtime="torch").search("Noise Song 2", k=3)
    invalidate(copy)  # what a scan does before it changes the table
    assert not (copy / FOLDER / MARK).exists()
    after = SearchEngine(copy, text_encoder=text_encoder, text_runtime="torch").search("Noise Song 2", k=3)
    assert (copy / FOLDER / MARK).exists()  # rebuilt from the table by the first search
    assert [h.id for h in after] == [h.id for h in before]


def test_cli_query_needs_neither_torch_nor_transformers_nor_lancedb(db: Path, text_encoder):
    from mirkit.retrieval.search import SearchEngine

    engine = SearchEngine(db, text_encoder=text_encoder, text_runtime="onnxruntime")  # records the ONNX card
    expected = [h.id for h in engine.search("bright tone song", k=5)]
    script = (
        "import json, sys\n"
        "from mirkit.cli.main import main\n"
        f"sys.argv = ['mirkit', 'search', 'bright tone song', '--db', {str(db)!r}, '--k', '5', '--json']\n"
        "code = main()\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'lancedb') if m in sys.modules)\n"
        "print(json.dumps({'code': code, 'heavy': heavy}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MIRKIT_CACHE": os.environ["MIRKIT_CACHE"]})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    status = json.loads(lines[-1])
    assert status == {"code": 0, "heavy": []}
    assert [json.loads(line)["id"] for line in lines[:-1]] == expected
    assert done.stderr == ""  # no progress bars or warnings without -v


def test_a_changed_weights_file_retires_the_card(tmp_path: Path, text_encoder, monkeypatch):
    from mirkit.encoders import text_onnx

    monkeypatch.setenv("MIRKIT_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"12345")
    text_encoder.weights_file = weights
    try:
        assert text_encoder.use_onnx_runtime() is None
    finally:
        text_encoder.weights_file = None
    fast, reason = text_onnx.load_onnx_text_encoder(name=text_encoder.name, revision=text_encoder.revision)
    assert reason is None
    np.testing.assert_allclose(fast.encode(["calm solo piano", "a"]), text_encoder._embed_torch(["calm solo piano", "a"]),
                               atol=1e-5)
    weights.write_bytes(b"123456")
    fast, reason = text_onnx.load_onnx_text_encoder(name=text_encoder.name, revision=text_encoder.revision)
    assert fast is None and "changed" in reason


def test_extraction_records_the_level_of_each_second(tmp_path: Path):
    from mirkit.features.extract import ExtractConfig, extract
    from mirkit.features.store import FeatureStore

    rate = 8000
    t = np.arange(2 * rate) / rate
    wave = np.concatenate([0.5 * np.sin(2 * np.pi * 300 * t), np.zeros(2 * rate)]).astype(np.float32)
    path = tmp_path / "half.flac"
    sf.write(path, wave, rate)
    store = FeatureStore(tmp_path / "store")
    report = extract([path], store=store, config=ExtractConfig(encoder="tiny-test", layers=[0], num_workers=0),
                     progress=False)
    meta = store.recipe(report.recipe).read(report.item_ids[str(path)])[1]
    level = meta["level_dbfs"]
    assert len(level) == 4
    assert all(abs(v - 20 * np.log10(0.5 / np.sqrt(2))) < 0.5 for v in level[:2])  # a sine's RMS is peak / sqrt 2
    assert all(v <= -100 for v in level[2:])


def test_audible_mean_leaves_out_silent_seconds():
    frames = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 4.0]])
    arrays = {"frames_7": frames, "times_7": np.array([0.0, 3.0, 6.0]), "pooled_7": frames.mean(0)}
    loud, quiet = -20.0, SILENCE_DBFS - 30
    meta = {"level_dbfs": [loud] * 3 + [quiet] * 6, "duration_s": 9.0}
    np.testing.assert_allclose(audible_mean(arrays, meta, layer=7), [1.0, 0.0])
    assert audible_mean(arrays, {"level_dbfs": [quiet] * 9}, layer=7) is None
    np.testing.assert_allclose(audible_mean(arrays, {}, layer=7), frames.mean(0))  # older items: the clip mean


@pytest.mark.weights
def test_a_silent_track_gets_no_pseudo_tags(tmp_path: Path, text_encoder):
    from mirkit.encoders.zoo import get_spec
    from mirkit.retrieval.index import load_tracks

    if not get_spec("musicnn-mtt").weights_available():
        pytest.skip("musicnn's weights are not installed (pip install --no-deps musicnn)")
    rate = 16000
    t = np.arange(8 * rate) / rate
    library = tmp_path / "music"
    library.mkdir()
    sf.write(library / "silence.flac", np.zeros(8 * rate, np.float32), rate)
    sf.write(library / "hiss.flac", (1e-5 * np.random.default_rng(0).standard_normal(8 * rate)).astype(np.float32), rate)
    sf.write(library / "organ.flac", (0.3 * np.sign(np.sin(2 * np.pi * 220 * t))).astype(np.float32), rate)
    index_library(library, db=tmp_path / "lib", config=IndexConfig(analysis=False), progress=False, text_encoder=text_encoder)
    tags = {Path(str(r["path"])).stem: list(r["pseudo_tags"]) for r in load_tracks(tmp_path / "lib")}
    assert tags["silence"] == [] and tags["hiss"] == []  # -100 dBFS noise is silence too
    assert tags["organ"]  # an audible track keeps its tags
