"""Suite-level tests moved from ``tests/unit/test_tune.py`` (they build the tiny suite): `mirkit tune`: methods train exactly their parameters, start from the frozen function, save/load,"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from mirkit.adapt.targets import Targets
from mirkit.errors import CheckpointError, ConfigError, TrainingError, UnknownNameError
from mirkit.tune import load_tuned, tune_task
from mirkit.tune.data import load_task_audio
from mirkit.tune.inference import predict
from mirkit.tune.loop import train
from mirkit.tune.run import build_model, count_parameters
from tests.unit.test_tune import CASES, FAST, _changed, _snapshot, options


@pytest.mark.parametrize("encoder, method, settings, pattern", CASES, ids=[f"{e}-{m}-{'-'.join(o) or 'default'}"
                                                                           for e, m, o, _ in CASES])
def test_only_the_methods_parameters_change_and_they_do(tiny_suite, hubert, tmp_path, encoder, method, settings, pattern):
    task = tiny_suite / "genre"
    weights = hubert if encoder == "hubert" else None
    name = "hubert-base" if encoder == "hubert" else encoder
    config = replace(FAST, method=method, options=options(method, **settings))
    model = build_model(encoder=name, config=config, output_dim=8, weights_dir=weights)
    spec = model.encoder.spec
    audio = load_task_audio(task, label="genre", sample_rate=spec.sample_rate, min_duration_s=spec.min_duration_s,
                            progress=False)
    targets = Targets.fit("multiclass", audio.splits["train"].labels)
    before = _snapshot(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    train(model, audio.splits, targets, config=config, run_dir=tmp_path, progress=False, stop_after_steps=2)
    changed = _changed(model, before)
    head = {n for n in trainable if n.startswith("head.")}
    assert head and head <= changed
    expected = {n for n in trainable if n not in head}
    assert changed - head <= expected, f"frozen parameters moved: {sorted(changed - head - expected)[:5]}"
    if not pattern:  # probe: nothing but the head trains
        assert expected == set()
    else:
        assert expected and all(re.search(pattern, n) for n in expected), sorted(expected)[:5]
        # everything the method trains moves (a prefix gate opens first, its keys/values a step later)
        assert expected <= changed, f"trainable but unchanged: {sorted(expected - changed)[:5]}"
    counts = count_parameters(model, method)
    assert counts["trainable"] == sum(p.numel() for n, p in model.named_parameters() if n in trainable)
    if method == "probe":
        assert counts["trainable_percent_of_encoder"] == 0


def test_tune_run_saves_small_files_that_load_back_and_lora_merges(tiny_suite, tmp_path):
    config = replace(FAST, method="lora", options=options("lora", lora_rank=2))
    summary = tune_task(task_dir=tiny_suite / "genre", encoder="tiny-test", out_dir=tmp_path / "run", config=config,
                        seeds=2, progress=False)
    assert summary["seeds"] == 2 and 0 <= summary["layers"]["lora"]["headline"]["mean"] <= 1
    result = json.loads(next((tmp_path / "run" / "results").glob("*seed0.json")).read_text())
    for key in ("trainable", "trainable_percent_of_encoder", "step_s", "epoch_s", "wall_s", "peak_memory_mib"):
        assert result["cost"][key] is not None
    assert "eval: mean over non-overlapping 1 s windows" in result["window"]
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "run" / "seed0" / "best.safetensors"))
    assert saved and all(not k.startswith("encoder.") or "lora_" in k for k in saved)  # adapters alone, no base
    model, targets, meta = load_tuned(tmp_path / "run", seed=0)
    audio = load_task_audio(tiny_suite / "genre", label="genre", sample_rate=8000, min_duration_s=0.008, progress=False)
    args = dict(window_samples=8000, min_samples=64, batch_size=4, device=torch.device("cpu"), method="lora")
    out = predict(model, audio.splits["test"], **args)
    again, _, _ = load_tuned(tmp_path / "run", seed=0)
    np.testing.assert_array_equal(predict(again, audio.splits["test"], **args), out)
    merged, _, _ = load_tuned(tmp_path / "run", seed=0, merge=True)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    np.testing.assert_allclose(predict(merged, audio.splits["test"], **args), out, rtol=1e-5, atol=1e-5)  # float order
    # the reported valid metric is what the saved best weights give
    assert meta["seed"] == 0
    valid = targets.evaluate(audio.splits["valid"].labels, predict(model, audio.splits["valid"], **args))
    assert valid["headline"] == pytest.approx(result["valid"]["headline"])


@pytest.mark.parametrize("method, augment", [("adapter", "none"), ("finetune", "none"), ("bitfit", "gain,eq,room,noise")])
def test_resumed_run_equals_uninterrupted_bit_for_bit(tiny_suite, tmp_path, method, augment):
    from safetensors.torch import load_file

    config = replace(FAST, method=method, max_epochs=3, checkpoint_every=1, augment=augment,
                     head="mlp")  # mlp: dropout draws from the RNG, which the checkpoint must restore
    args = dict(task_dir=tiny_suite / "genre", encoder="tiny-test", config=config, seeds=1, progress=False)
    tune_task(out_dir=tmp_path / "whole", **args)
    stopped = tune_task(out_dir=tmp_path / "killed", stop_after_steps=3, **args)
    assert stopped == {"stopped": True}
    tune_task(out_dir=tmp_path / "killed", **args)  # --resume auto
    whole = json.loads(next((tmp_path / "whole" / "results").glob("*.json")).read_text())
    resumed = json.loads(next((tmp_path / "killed" / "results").glob("*.json")).read_text())
    assert resumed["cost"]["resumed_from_step"] == 3 and whole["cost"]["resumed_from_step"] is None
    assert resumed["test"] == whole["test"] and resumed["history"] == whole["history"]
    for name in ("best.safetensors", "checkpoints/" + json.loads(
            (tmp_path / "whole" / "seed0" / "checkpoints" / "checkpoint.json").read_text())["weights"]):
        a, b = load_file(str(tmp_path / "whole" / "seed0" / name)), load_file(str(tmp_path / "killed" / "seed0" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(list((tmp_path / "killed" / "seed0" / "checkpoints").glob("ckpt-*"))) == 2  # old ones removed


def test_resume_with_other_settings_is_refused(tiny_suite, tmp_path):
    args = dict(task_dir=tiny_suite / "genre", encoder="tiny-test", seeds=1, progress=False, out_dir=tmp_path)
    tune_task(config=replace(FAST, method="bitfit"), stop_after_steps=2, **args)
    with pytest.raises(CheckpointError, match="other config"):
        tune_task(config=replace(FAST, method="bitfit", batch_size=5), **args)
    with pytest.raises(CheckpointError, match="other config"):
        tune_task(config=replace(FAST, method="bitfit", loudness="peak"), **args)


def test_a_run_saved_before_a_setting_existed_resumes_with_its_default(tiny_suite, tmp_path):
    args = dict(task_dir=tiny_suite / "genre", encoder="tiny-test", seeds=1, progress=False, out_dir=tmp_path,
                config=replace(FAST, method="bitfit", checkpoint_every=1))
    tune_task(stop_after_steps=3, **args)
    meta = json.loads((tmp_path / "tune.json").read_text())
    del meta["config"]["loudness"]  # as written before `--loudness` existed
    (tmp_path / "tune.json").write_text(json.dumps(meta))
    state = next((tmp_path / "seed0/checkpoints").glob("ckpt-*.pt"))
    trainer = torch.load(state, weights_only=False)
    del trainer["config"]["loudness"]
    torch.save(trainer, state)
    summary = tune_task(**args)
    assert json.loads(next((tmp_path / "results").glob("*.json")).read_text())["cost"]["resumed_from_step"] == 3
    assert summary["seeds"] == 1


def test_non_finite_losses_abort_with_a_clear_message(tiny_suite, tmp_path):
    config = replace(FAST, method="probe", max_bad_steps=2)
    model = build_model(encoder="tiny-test", config=config, output_dim=8)
    audio = load_task_audio(tiny_suite / "genre", label="genre", sample_rate=8000, min_duration_s=0.008, progress=False)
    targets = Targets.fit("multiclass", audio.splits["train"].labels)
    model.head.net.register_forward_hook(lambda m, a, out: out * float("nan"))
    with pytest.raises(TrainingError, match="2 optimizer steps in a row had a non-finite loss"):
        train(model, audio.splits, targets, config=config, run_dir=tmp_path, progress=False)


def test_methods_report_puts_tune_runs_side_by_side(tiny_suite, tmp_path):
    from mirkit.bench.tune_report import collect_methods, write_methods_report

    for method in ("probe", "bitfit"):
        tune_task(task_dir=tiny_suite / "genre", encoder="tiny-test", out_dir=tmp_path / f"genre-{method}",
                  config=replace(FAST, method=method, max_epochs=1), seeds=2, progress=False)
    rows = collect_methods(tmp_path)
    assert sorted(r.method for r in rows) == ["bitfit", "probe"] and all(r.seeds == 2 for r in rows)
    bitfit = next(r for r in rows if r.method == "bitfit")
    assert bitfit.method_params == 40 and bitfit.percent == pytest.approx(100 * 40 / 2216, rel=1e-3)
    md, page = write_methods_report(tmp_path)
    text = md.read_text()
    assert "| tiny-test | bitfit | 40 (1.81%) |" in text and "genre (accuracy)" in text
    assert (tmp_path / "plots" / "methods-params.png").stat().st_size > 5000 and "data:image/png" in page.read_text()
    with pytest.raises(ConfigError, match="no finished tune run"):
        write_methods_report(tmp_path / "genre-probe" / "seed0")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="gpu tier: CUDA is not available here")
@pytest.mark.parametrize("method", ["finetune", "adapter", "prompt", "lora"])
def test_cuda_run_uses_bf16_autocast_and_reports_gpu_memory(tiny_suite, hubert, tmp_path, method, monkeypatch):
    import mirkit.tune.run

    dtypes: set[torch.dtype] = set()
    build = mirkit.tune.run.build_model

    def recording_build(**kwargs):  # every Linear's output dtype in the tuned model's forward passes
        model = build(**kwargs)
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.register_forward_hook(lambda m, i, out: dtypes.add(out.dtype))
        return model

    monkeypatch.setattr(mirkit.tune.run, "build_model", recording_build)
    config = replace(FAST, method=method, options=options(method, **{"adapter": {"adapter_size": 4}, "prompt": {"prompt_tokens": 3}}.get(method, {})))
    summary = tune_task(task_dir=tiny_suite / "genre", encoder="hubert-base", weights_dir=hubert, out_dir=tmp_path,
                        config=config, seeds=1, device="cuda", progress=False)
    assert torch.bfloat16 in dtypes, dtypes  # matrix products ran under bf16 autocast
    assert 0 <= summary["layers"][method]["headline"]["mean"] <= 1
    result = json.loads(next((tmp_path / "results").glob("*.json")).read_text())
    assert result["cost"]["device"] == "cuda" and result["cost"]["memory_kind"] == "GPU memory allocated (peak)"
    assert result["cost"]["peak_memory_mib"] > 0 and result["cost"]["skipped_steps"] == 0


def test_augmentation_changes_training_crops_only_and_unknown_names_fail(tiny_suite):
    from mirkit.audio.augment import AUGMENTATIONS, augment_crop, parse_augment
    from mirkit.tune.data import train_batches

    audio = load_task_audio(tiny_suite / "genre", label="genre", sample_rate=8000, min_duration_s=0.008, progress=False)
    plain = list(train_batches(audio.splits["train"], batch_size=4, crop_samples=4000, seed=0, epoch=0))
    names = parse_augment("gain,eq,room,noise")
    augmented = list(train_batches(audio.splits["train"], batch_size=4, crop_samples=4000, seed=0, epoch=0,
                                   augment=names, sample_rate=8000))
    again = list(train_batches(audio.splits["train"], batch_size=4, crop_samples=4000, seed=0, epoch=0,
                               augment=names, sample_rate=8000))
    assert all(torch.equal(a[2], b[2]) for a, b in zip(augmented, again))  # the same draws on every run
    assert all(np.array_equal(a[3], b[3]) and np.array_equal(a[4], b[4]) for a, b in zip(plain, augmented))
    assert any(not torch.equal(a[2], b[2]) for a, b in zip(plain, augmented))
    assert all(a[5] == [{}] * len(a[1]) for a in augmented)  # label-preserving: no label changes
    wave = np.sin(np.linspace(0, 400, 8000)).astype(np.float32)
    for name in AUGMENTATIONS:  # each one, forced on, keeps the length (or shortens: faster) and changes the signal
        spec = AUGMENTATIONS.get(name)
        if spec.facet is None:
            out = spec.apply(wave, 8000, np.random.default_rng(1))
        else:
            out = spec.change(wave, 8000, 1.15 if spec.facet == "rate" else 2.0)
        assert out.dtype == np.float32 and len(out) <= len(wave) and not np.allclose(out, wave[: len(out)])
    same, changes = augment_crop(wave, 8000, (), np.random.default_rng(0))
    assert np.array_equal(same, wave) and changes == {}
    assert parse_augment("none") == ()
    with pytest.raises(UnknownNameError, match="noise"):
        parse_augment("gain,nois")
    with pytest.raises(UnknownNameError):
        replace(FAST, method="probe", augment="pitch-shift").validate()


def test_label_changing_augmentations_move_the_labels_by_rule_and_refuse_tasks_without_one(tiny_suite, tmp_path):
    from mirkit.audio.augment import AUGMENTATIONS, augment_crop
    from mirkit.data.label_rules import check_rules, relabel, scale_tempo, shift_pitch, transpose_key
    from mirkit.errors import ConfigError

    assert transpose_key("A# major", 2) == "C major" and transpose_key("C minor", -1) == "B minor"
    assert shift_pitch("61", -2) == "59" and scale_tempo(100.0, 1.1) == pytest.approx(110.0)
    assert relabel("key", "E minor", {"semitones": 1.0, "rate": 1.1}) == "F minor"  # speed keeps the key
    assert relabel("bpm", 120.0, {"semitones": 2.0, "rate": 0.9}) == pytest.approx(108.0)  # pitch keeps the tempo
    assert relabel("family", "brass", {"semitones": -2.0, "rate": 1.1}) == "brass"
    # a real pitch shift moves the spectrum by the semitones the label moves by
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    shifted = AUGMENTATIONS.get("pitch").change(tone, 16000, 2.0)
    peak = np.argmax(np.abs(np.fft.rfft(shifted[2000:14000]))) * 16000 / 12000
    assert peak == pytest.approx(440 * 2 ** (2 / 12), rel=0.01)
    # stretch: faster by 1.1 means the crop's music ends sooner (shorter, then padded in the batch)
    assert len(AUGMENTATIONS.get("stretch").change(tone, 16000, 1.1)) == pytest.approx(16000 / 1.1, abs=400)
    # a refused draw leaves the crop alone (and the draws of the rest stay the same)
    kept, changes = augment_crop(tone, 16000, ("pitch",) * 8, np.random.default_rng(0), accept=lambda ch: False)
    assert np.array_equal(kept, tone) and changes == {}
    # tasks: rules exist for key/pitch/tempo/instrument (both), genre/tagging (pitch only); none elsewhere
    check_rules("key", "key", ("pitch", "stretch", "gain"))
    check_rules("genre", "genre", ("pitch", "noise"))
    with pytest.raises(ConfigError, match="--augment stretch changes the music's rate.*'tagging'.*gain,eq,room,noise,pitch"):
        check_rules("tagging", "tags", ("stretch",))
    for task, label in (("beat", "beats"), ("chords", "chords"), ("transcription", "notes")):
        check_rules(task, label, ("pitch", "stretch", "room"))  # time-resolved: labels follow by rule too
    with pytest.raises(ConfigError, match="no rule.*velocity labels of task 'nsynth-velocity'"):
        check_rules("nsynth-velocity", "velocity", ("pitch",))  # an adapter's label without a rule
    with pytest.raises(ConfigError, match="--augment stretch"):  # before any work: nothing written
        tune_task(task_dir=tiny_suite / "genre", encoder="tiny-test", out_dir=tmp_path / "genre", seeds=1,
                  progress=False, config=replace(FAST, method="probe", augment="stretch"))
    assert not (tmp_path / "genre").exists()


def test_time_resolved_labels_follow_pitch_shifts_and_speed_changes(tiny_suite, tmp_path, monkeypatch):
    import mirkit.tune.timed_loop
    from mirkit.data.label_rules import relabel_timed, shift_notes, transpose_chords
    from mirkit.kinds import frame_kind

    chords = [[0.0, 1.0, "A:min7"], [1.0, 2.0, "N"], [2.0, 3.0, "C:maj/5"], [3.0, 4.0, "X"]]
    assert transpose_chords(chords, 3) == [[0.0, 1.0, "C:min7"], [1.0, 2.0, "N"], [2.0, 3.0, "D#:maj/5"],
                                           [3.0, 4.0, "X"]]
    assert shift_notes([{"onset_s": 0.5, "offset_s": 1.0, "pitch": 60}], -2) == [{"onset_s": 0.5, "offset_s": 1.0,
                                                                                  "pitch": 58}]
    beats = {"beats": [1.0, 2.2], "downbeats": [1.0], "bpm": 50.0}
    same, scale = relabel_timed("beats", beats, {"semitones": 2.0, "rate": 1.25})
    assert same == beats and scale == 1.25  # a pitch shift keeps beats; the speed change scales the frame grid
    # a crop from 0.5 s played 1.25x faster: the beat at 2.2 s of the clip sounds at (2.2 - 0.5) / 1.25 s of the crop
    rate = 50.0
    grid = np.arange(100) / rate
    target = frame_kind("beat").encode(beats, 0.5 + grid * scale, rate_hz=rate)
    assert np.flatnonzero(target[:, 0] == 1.0).tolist() == [round(0.5 / 1.25 * rate), round(1.7 / 1.25 * rate)]
    # a run trains on relabelled crops (every time-resolved kind) and finishes
    calls = []
    original = mirkit.tune.timed_loop.relabel_timed
    monkeypatch.setattr("mirkit.tune.timed_loop.relabel_timed", lambda *a: calls.append(a[0]) or original(*a))
    for task in ("beat", "chords", "transcription"):
        summary = tune_task(task_dir=tiny_suite / task, encoder="tiny-test", out_dir=tmp_path / task, seeds=1,
                            progress=False, config=replace(FAST, method="probe", augment="pitch,stretch"))
        assert summary["seeds"] == 1 and 0 <= summary["layers"]["probe"]["headline"]["mean"] <= 1
    assert {"beats", "chords", "notes"} <= set(calls)


def test_a_key_run_trains_on_transposed_labels_and_resumes_bit_for_bit(tiny_suite, tmp_path, monkeypatch):
    import mirkit.tune.loop

    calls = []
    original = mirkit.tune.loop.relabel
    monkeypatch.setattr("mirkit.tune.loop.relabel", lambda *a: calls.append(a) or original(*a))
    config = replace(FAST, method="probe", augment="pitch,stretch", checkpoint_every=1)
    args = dict(task_dir=tiny_suite / "key", encoder="tiny-test", config=config, seeds=1, progress=False)
    tune_task(out_dir=tmp_path / "whole", **args)
    assert tune_task(out_dir=tmp_path / "split", stop_after_steps=2, **args) == {"stopped": True}
    tune_task(out_dir=tmp_path / "split", **args)
    whole, split = (json.loads(next((tmp_path / r / "results").glob("*.json")).read_text()) for r in ("whole", "split"))
    assert split["cost"]["resumed_from_step"] == 2
    assert split["test"] == whole["test"] and split["history"] == whole["history"]
    assert (tmp_path / "whole/seed0/best.safetensors").read_bytes() == (tmp_path / "split/seed0/best.safetensors").read_bytes()
    assert {name for name, _, _ in calls} == {"key"}
    assert any(changes.get("semitones") for _, _, changes in calls)  # transposed keys were trained on
