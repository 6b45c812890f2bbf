"""Suite-level tests moved from ``tests/unit/test_timed.py`` (they build the tiny suite): frame-level probing of the time-resolved tasks: frame targets, decoding, the probe run on the tiny"""

from __future__ import annotations

import json

import pytest

from mirkit.errors import ConfigError, StoreError
from tests.unit.test_timed import result_path_stem  # noqa: F401


def test_frame_probes_learn_beats_and_chords_on_the_tiny_suite(tiny_suite, tmp_path):
    from mirkit.adapt.config import FrameProbeConfig, ProbeRunConfig
    from mirkit.adapt.run import probe_task

    config = FrameProbeConfig(learning_rates=(1e-2,), max_epochs=40)
    beat = probe_task(ProbeRunConfig(task_dir=tiny_suite / "beat", encoder="logmel", out_dir=tmp_path / "beat",
                            store=tmp_path / "store", seeds=1, probe=config, progress=False))
    stats = beat["layers"]["layer0"]
    assert beat["pooling"] == "none" and set(stats) >= {"f_measure", "cmlt", "amlt", "downbeat_f_measure", "tempo_acc1"}
    assert stats["f_measure"]["mean"] > 0.3, stats  # onsets are in a log-mel frame; chance is near 0
    result = json.loads(next((tmp_path / "beat/results").glob("*.json")).read_text())
    assert result["valid"]["headline"] == result["valid"]["f_measure"] and result["frame_rate_hz"] == pytest.approx(
        22050 / 512, rel=0.01)
    assert (tmp_path / "beat/models" / result_path_stem(tmp_path / "beat") / "head.safetensors").is_file()
    chords = probe_task(ProbeRunConfig(task_dir=tiny_suite / "chords", encoder="chroma", out_dir=tmp_path / "chords",
                              store=tmp_path / "store", seeds=1, probe=config, progress=False))
    assert 0.3 < chords["layers"]["layer0"]["majmin"]["mean"] <= 1.0, chords["layers"]
    again = probe_task(ProbeRunConfig(task_dir=tiny_suite / "chords", encoder="chroma", out_dir=tmp_path / "chords",
                             store=tmp_path / "store", seeds=1, probe=config, progress=False))
    assert again["jobs"] == {"trained": 0, "reused": 1} and again["layers"] == chords["layers"]
    # the runs predict on new audio: .lab files, beat and downbeat lists, one predictions.jsonl line per file
    from mirkit.adapt.timed.predict import predict_timed

    audio = sorted((tiny_suite / "key" / "audio").glob("*.flac"))[:3]
    for file in audio:
        (tmp_path / "new").mkdir(exist_ok=True)
        (tmp_path / "new" / file.name).write_bytes(file.read_bytes())
    (tmp_path / "new" / "broken.wav").write_bytes(b"not audio")
    report, rows = predict_timed(run_dir=tmp_path / "chords", source=tmp_path / "new", store=tmp_path / "store",
                                 out_dir=tmp_path / "pred", progress=False)
    assert rows == 3 and report.num_skipped == 1
    lab = (tmp_path / "pred" / f"{audio[0].stem}.lab").read_text().splitlines()
    assert lab and all(len(line.split("\t")) == 3 for line in lab)
    _, rows = predict_timed(run_dir=tmp_path / "beat", source=tmp_path / "new", store=tmp_path / "store",
                            out_dir=tmp_path / "pred-beat", progress=False)
    line = json.loads((tmp_path / "pred-beat" / "predictions.jsonl").read_text().splitlines()[0])
    assert line["task"] == "beat" and line["tempo_bpm"] > 0 and set(line["downbeats"]) <= set(line["beats"])
    beats = (tmp_path / "pred-beat" / f"{audio[0].stem}.beats.txt").read_text().split()
    assert [float(b) for b in beats] == line["beats"]


def test_time_resolved_tasks_refuse_clip_level_tools_and_vice_versa(tiny_suite, tmp_path):
    from mirkit.adapt.config import ProbeRunConfig
    from mirkit.adapt.run import probe_task
    from mirkit.adapt.timed.run import probe_timed_task
    from mirkit.data.task_folder import load_task
    from mirkit.features.extract import ExtractConfig, extract
    from mirkit.features.store import FeatureStore

    with pytest.raises(ConfigError, match="time-resolved task"):
        load_task(tiny_suite / "beat").clip_kind()
    run = ProbeRunConfig(task_dir=tiny_suite / "key", encoder="logmel", out_dir=tmp_path / "y", store=tmp_path / "s",
                         progress=False)
    with pytest.raises(ConfigError, match="frame-level heads do not apply"):
        probe_timed_task(run, load_task(tiny_suite / "key"))
    with pytest.raises(ConfigError, match="--augment is for clip-level probes"):
        probe_task(ProbeRunConfig(task_dir=tiny_suite / "beat", encoder="logmel", out_dir=tmp_path / "x",
                                  store=tmp_path / "s", augment="eq", progress=False))
    with pytest.raises(ConfigError, match="temporal head"):
        probe_task(ProbeRunConfig(task_dir=tiny_suite / "key", encoder="logmel", out_dir=tmp_path / "z",
                                  store=tmp_path / "s", model="tcn", progress=False))
    report = extract(tiny_suite / "beat" / "manifest.jsonl", store=tmp_path / "s", progress=False,
                     config=ExtractConfig(encoder="logmel"))
    items = FeatureStore(tmp_path / "s").recipe(report.recipe)
    with pytest.raises(StoreError, match="pooling='none'"):
        items.read_frames(0, list(report.item_ids.values())[:1])


def test_classic_peers_run_on_the_same_test_split(tiny_suite):
    from mirkit.bench.peers import run_peer
    from mirkit.kinds import PEERS, peers_of_kind

    assert [p.name for p in peers_of_kind("beat")] == ["librosa-beat-track", "essentia-beats", "madmom-beats",
                                                       "madmom-downbeats"]
    assert [p.name for p in peers_of_kind("chords")] == ["chroma-templates", "madmom-chords"]
    beats = run_peer(PEERS.get("librosa-beat-track"), tiny_suite / "beat", progress=False)
    chords = run_peer(PEERS.get("chroma-templates"), tiny_suite / "chords", progress=False)
    assert beats["split"] == "test" and 0 < beats["test"]["f_measure"] <= 1
    assert chords["test"]["majmin"] > 0.5, chords["test"]  # rendered triads are what templates find


def test_transcription_probe_and_basic_pitch_peer_on_the_tiny_suite(tiny_suite, tmp_path):
    from mirkit.adapt.config import FrameProbeConfig, ProbeRunConfig
    from mirkit.adapt.run import probe_task
    from mirkit.adapt.timed.predict import predict_timed
    from mirkit.bench.peers import run_peer
    from mirkit.kinds import PEERS

    summary = probe_task(ProbeRunConfig(task_dir=tiny_suite / "transcription", encoder="cqt", out_dir=tmp_path / "run",
                               store=tmp_path / "store", seeds=1, probe=FrameProbeConfig(max_epochs=10),
                               progress=False))
    stats = summary["layers"]["layer0"]
    assert 0 <= stats["note_f1"]["mean"] <= 1 and stats["note_f1_offsets"]["mean"] <= stats["note_f1"]["mean"] + 1e-9
    audio = sorted((tiny_suite / "transcription" / "audio").glob("*.flac"))[0]
    predict_timed(run_dir=tmp_path / "run", source=audio, store=tmp_path / "store", out_dir=tmp_path / "pred",
                  progress=False)
    import pretty_midi

    assert (tmp_path / "pred" / f"{audio.stem}.mid").is_file()
    pretty_midi.PrettyMIDI(str(tmp_path / "pred" / f"{audio.stem}.mid"))  # a readable MIDI file
    if PEERS.get("basic-pitch").version() is None:
        pytest.skip("basic-pitch is not installed (scripts/setup.sh installs it with --no-deps)")
    result = run_peer(PEERS.get("basic-pitch"), tiny_suite / "transcription", progress=False)
    assert result["test"]["note_f1"] > 0.5, result["test"]  # rendered piano notes are what basic-pitch finds


def test_bad_labels_are_skipped_with_their_reason_and_the_run_goes_on(tiny_suite, tmp_path):
    import shutil

    from mirkit.adapt.config import FrameProbeConfig, ProbeRunConfig
    from mirkit.adapt.run import probe_task
    from mirkit.bench.peers import run_peer
    from mirkit.kinds import PEERS

    task = tmp_path / "beat"
    shutil.copytree(tiny_suite / "beat", task)
    for name in ("tempo",):  # the beat manifest points at the tempo task's audio
        shutil.copytree(tiny_suite / name, tmp_path / name)
    lines = (task / "manifest.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    test_rows = [i for i, r in enumerate(rows) if r["split"] == "test"]
    rows[test_rows[0]]["labels"]["beats"] = list(reversed(rows[test_rows[0]]["labels"]["beats"]))
    rows[test_rows[1]]["labels"]["beats"] = []
    (task / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = probe_task(ProbeRunConfig(task_dir=task, encoder="logmel", out_dir=tmp_path / "run", store=tmp_path / "store",
                               seeds=1, probe=FrameProbeConfig(max_epochs=3), progress=False))
    skipped = [json.loads(line) for line in (tmp_path / "run" / "skipped.jsonl").read_text().splitlines()]
    assert [s["reason"] for s in skipped] == ["bad_labels", "bad_labels"] and summary["skipped_clips"] == 2
    assert "not strictly increasing" in skipped[0]["message"] and "at least two" in skipped[1]["message"]
    assert summary["clips"]["test"] == len(test_rows) - 2
    result = json.loads(next((tmp_path / "run" / "results").glob("*.json")).read_text())  # the run went on: a head
    assert summary["jobs"]["trained"] == 1 and 0 < result["test"]["f_measure"] <= 1, result["test"]
    peer = run_peer(PEERS.get("librosa-beat-track"), task, progress=False)
    assert peer["skipped"] == {"bad_labels": 2} and peer["clips"] == len(test_rows) - 2


def test_probe_cli_passes_the_frame_rate_of_free_hop_encoders(tiny_suite, tmp_path):
    from mirkit.cli.main import main

    code = main(["probe", "--task", str(tiny_suite / "beat"), "--encoder", "crepe-tiny", "--layers", "0",
                 "--frame-rate-hz", "25", "--seeds", "1", "--out", str(tmp_path / "run"), "--store",
                 str(tmp_path / "store"), "--no-progress"])
    result = json.loads(next((tmp_path / "run" / "results").glob("*.json")).read_text())
    assert code == 0 and result["frame_rate_hz"] == pytest.approx(25, rel=0.01) and result["extract_frame_rate_hz"] == 25
