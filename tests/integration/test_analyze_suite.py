"""`mirkit analyze train` on the tiny suite, then `mirkit analyze` on new audio with the bundle it wrote."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from mirkit.errors import CheckpointError, ConfigError

ENCODERS = "key=logmel+chroma,beats=logmel,chords=chroma,notes=logmel,instrument=logmel,tags=logmel"


@pytest.fixture(scope="module")
def bundle(tiny_suite, tmp_path_factory) -> Path:
    from mirkit.analysis.train import BundleTrainConfig, parse_encoders, train_bundle

    out = tmp_path_factory.mktemp("analysis") / "heads"
    train_bundle(BundleTrainConfig(suite_dir=tiny_suite, out_dir=out, encoders=parse_encoders(ENCODERS), seeds=1,
                                   progress=False))
    return out


@pytest.fixture()
def songs(tiny_suite, tmp_path) -> Path:
    """Three clips from two task folders, one in a sub-folder, one with a name its neighbour shares, a broken file."""
    folder = tmp_path / "songs"
    (folder / "live").mkdir(parents=True)
    keys = sorted((tiny_suite / "key" / "audio").glob("*.flac"))
    shutil.copy(keys[0], folder / "a.flac")
    shutil.copy(keys[1], folder / "live" / "a.flac")
    shutil.copy(sorted((tiny_suite / "transcription" / "audio").glob("*.flac"))[0], folder / "piano.flac")
    (folder / "broken.wav").write_bytes(b"not audio")
    return folder


def test_train_writes_a_bundle_chosen_on_validation(bundle):
    from mirkit.analysis.bundle import Bundle

    loaded = Bundle.load(bundle)
    assert loaded.tasks == ["key", "beats", "chords", "notes", "instrument", "tags"]
    key = loaded.info["tasks"]["key"]
    # the chosen encoder is the candidate with the best validation score, whatever its test score
    assert key["encoder"] == max(key["candidates"], key=lambda c: c["valid"])["encoder"]
    assert {c["encoder"] for c in key["candidates"]} == {"logmel", "chroma"}
    assert loaded.info["loudness"] == "peak" and key["augment"] == "eq,room"
    assert 0 < loaded.info["bytes"] < 10 * 2**20
    card = (bundle / "MODEL_CARD.md").read_text()
    assert "| key | key |" in card and "mirkit analyze train" in card
    # one head per seed under each task, and nothing but the chosen job
    assert len(list((bundle / "key" / "results").glob("*.json"))) == 1


def test_analyze_writes_every_output_and_resumes(bundle, songs, tmp_path, capsys):
    from mirkit.cli.main import main

    out = tmp_path / "out"
    code = main(["analyze", str(songs), "--out", str(out), "--heads", str(bundle), "--no-progress"])
    assert code == 0
    captured = capsys.readouterr()
    assert "Analysed 3/4 files" in captured.out and "broken.wav: decode_error" in captured.err
    rows = [json.loads(line) for line in (out / "analysis.jsonl").read_text().splitlines()]
    assert sorted(r["json"] for r in rows) == ["a.json", "live/a.json", "piano.json"]
    for row in rows:
        result = json.loads((out / row["json"]).read_text())
        assert result["key"]["key"] == row["key"] and 0 < result["key"]["confidence"] <= 1
        assert result["beats"]["tempo_bpm"] == row["tempo_bpm"] and len(result["instrument"]["scores"]) == 11
        stem = out / row["json"].removesuffix(".json")
        for suffix in (".beats.txt", ".downbeats.txt", ".lab", ".mid"):
            assert stem.with_name(stem.name + suffix).is_file(), suffix
        beats = [float(x) for x in stem.with_name(stem.name + ".beats.txt").read_text().split()]
        assert beats == sorted(beats) and len(beats) == row["beats"]
    skipped = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert [s["reason"] for s in skipped] == ["decode_error"]
    # a rerun reads every feature from the store and gives the same analysis, here as CSV
    again = tmp_path / "again"
    code = main(["analyze", str(songs / "a.flac"), str(songs / "live"), "--out", str(again), "--heads", str(bundle),
                 "--store", str(out / "features"), "--format", "csv", "--tasks", "key,beats", "--no-progress"])
    assert code == 0
    table = list(csv.DictReader((again / "analysis.csv").open()))
    assert len(table) == 2 and table[0]["key"] == next(r["key"] for r in rows if r["json"] == "a.json")
    assert table[0]["chords"] == ""  # not asked for


def test_python_api_returns_one_dict_per_file(bundle, songs, tmp_path):
    import mirkit

    one = mirkit.analyze(songs / "piano.flac", heads=bundle, store=tmp_path / "store", tasks="notes,key")
    assert set(one) == {"path", "duration_s", "notes", "key"} and one["notes"]["notes"]
    many = mirkit.analyze(songs, heads=bundle, store=tmp_path / "store")
    assert len(many) == 3 and all("chords" in r for r in many)
    with pytest.raises(ConfigError, match="broken.wav could not be analysed: decode_error"):
        mirkit.analyze(songs / "broken.wav", heads=bundle, store=tmp_path / "store")


def test_bad_requests_fail_before_any_work(bundle, songs, tmp_path):
    from mirkit.analysis.bundle import Bundle
    from mirkit.cli.main import main

    with pytest.raises(CheckpointError, match="not an analysis bundle .*mirkit analyze train"):
        Bundle.load(tmp_path)
    assert main(["analyze", str(songs), "--out", str(tmp_path / "o"), "--heads", str(bundle), "--tasks",
                 "tempo"]) == 2  # unknown task: a suggestion, exit 2
    partial = tmp_path / "partial"
    shutil.copytree(bundle, partial)
    info = json.loads((partial / "bundle.json").read_text())
    del info["tasks"]["notes"]
    (partial / "bundle.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match="'notes' has no head in .*retrain it"):
        Bundle.load(partial).entry("notes")
    assert not (tmp_path / "o").exists()


def test_the_index_keeps_the_analysis_and_search_filters_and_sorts_by_it(bundle, songs, tmp_path):
    from mirkit.encoders.text import tiny_text_encoder
    from mirkit.retrieval.analysis_fields import parse_where
    from mirkit.retrieval.index import IndexConfig, index_library
    from mirkit.retrieval.search import SearchEngine

    db = tmp_path / "lib"
    config = IndexConfig(encoder="tiny-test", pseudo_tags=False, analysis_heads=str(bundle))
    report = index_library(songs, db=db, config=config, progress=False, text_encoder=tiny_text_encoder())
    assert report.analysis == {"analysed": 3, "kept": 0, "skipped": 0} and "3 analysed" in report.summary()
    engine = SearchEngine(db, text_encoder=tiny_text_encoder())
    assert all(r["key"] and r["tempo_bpm"] and r["instrument"] and r["chords"] for r in engine.rows)
    key = engine.rows[0]["key"]
    same_key = engine.browse(where=parse_where(key), k=10)
    assert [h.key for h in same_key] == [key] * sum(r["key"] == key for r in engine.rows)
    by_tempo = engine.browse(where=parse_where("1-1000 BPM"), sort="tempo", k=10)
    assert len(by_tempo) == 3 and [h.tempo_bpm for h in by_tempo] == sorted(h.tempo_bpm for h in by_tempo)
    found = engine.search("song", where=parse_where(key), k=10)
    assert found and {h.key for h in found} == {key}
    instrument = engine.rows[0]["instruments"][0]
    assert all(instrument in engine.rows[engine.row_of[h.id]]["instruments"]
               for h in engine.browse(where=parse_where(instrument), k=10))
    again = index_library(songs, db=db, config=config, progress=False, text_encoder=tiny_text_encoder())
    assert again.analysis == {"analysed": 0, "kept": 3, "skipped": 0}  # a rescan analyses only what changed
