"""`mirkit pretrain`: masking, targets, the CQT teacher, mixing, the loss, resume equality, bad input,
and an output that every command accepts as an encoder. Tiny model, synthetic corpus, CPU."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from mirkit.errors import CheckpointError, ConfigError, TrainingError
from mirkit.pretrain.config import PretrainConfig
from mirkit.pretrain.masking import span_mask
from mirkit.pretrain.mixing import mix_in_batch
from mirkit.pretrain.quantizers import KMeansQuantizer, RandomProjectionQuantizer
from mirkit.pretrain.run import build_model, pretrain
from mirkit.pretrain.teachers import CQT_BINS, cqt_target

TINY = PretrainConfig(preset="tiny", steps=6, batch_size=4, crop_s=2.0, checkpoint_every=2, stats_crops=8,
                      warmup_steps=2, codebook_size=64)


def test_span_mask_covers_about_the_asked_share_in_spans_and_never_padding():
    lengths = torch.tensor([400, 250, 3])
    mask = span_mask(lengths, 400, prob=0.8, span=5, generator=torch.Generator().manual_seed(0))
    assert not mask[1, 250:].any() and not mask[2, 3:].any() and mask[2].sum() == 3  # a short item: one span
    share = mask[0].float().mean()
    assert 0.45 < share < 0.85  # overlapping spans cover less than prob
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, mask[0].int().numpy(), 0])))[::2]
    assert runs.min() >= 5  # masked runs are whole spans (or merged spans)
    again = span_mask(lengths, 400, prob=0.8, span=5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)
    with pytest.raises(ConfigError, match="mask probability 0"):
        span_mask(lengths, 400, prob=0.0, span=5)


def test_bestrq_codes_are_deterministic_per_seed_and_use_the_codebook():
    x = torch.randn(2, 50, 40)
    a = RandomProjectionQuantizer(40, codebooks=2, codebook_size=32, seed=3)
    b = RandomProjectionQuantizer(40, codebooks=2, codebook_size=32, seed=3)
    c = RandomProjectionQuantizer(40, codebooks=2, codebook_size=32, seed=4)
    codes = a(x)
    assert codes.shape == (2, 50, 2) and codes.dtype == torch.long
    assert torch.equal(codes, b(x)) and not torch.equal(codes, c(x))
    assert len(codes[..., 0].unique()) > 10  # random inputs spread over the codebook
    assert not any(p.requires_grad for p in a.parameters())  # nothing to train


def test_kmeans_codes_are_nearest_centroids_and_an_unfitted_one_refuses():
    quantizer = KMeansQuantizer(2, clusters=2)
    with pytest.raises(ConfigError, match="not fitted"):
        quantizer(torch.zeros(1, 3, 2))
    points = np.r_[np.random.default_rng(0).normal(-5, 0.1, (50, 2)), np.random.default_rng(1).normal(5, 0.1, (50, 2))]
    quantizer.fit(points.astype(np.float32))
    codes = quantizer(torch.tensor([[[-5.0, -5.0], [5.0, 5.0], [-4.0, -6.0]]]))
    assert codes.shape == (1, 3, 1) and codes[0, 0, 0] == codes[0, 2, 0] != codes[0, 1, 0]


def test_cqt_teacher_peaks_at_the_played_pitch():
    t = np.arange(32000) / 16000
    target = cqt_target((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sample_rate=16000, hop=640, tokens=50)
    assert target.shape == (50, CQT_BINS)
    assert int(np.median(target[5:45].argmax(axis=1))) == 45  # A4 is 45 semitones above C1
    assert np.all(cqt_target(np.zeros(0, np.float32), sample_rate=16000, hop=640, tokens=4) == 0)


def test_mixing_adds_segments_of_other_clips_only_and_can_be_off():
    waves = torch.stack([torch.full((16000,), float(v)) for v in (1.0, 10.0, 100.0)])
    lengths = torch.full((3,), 16000)
    mixed, added = mix_in_batch(waves, lengths, sample_rate=16000, prob=1.0, generator=torch.Generator().manual_seed(0))
    assert added >= 3
    for i in range(3):
        extra = set(torch.unique(mixed[i] - waves[i]).tolist()) - {0.0}
        others = {float(waves[j, 0]) for j in range(3) if j != i}
        assert extra and all(any(abs(e - s) < 1e-3 for s in _sums(others)) for e in extra)  # sums of other clips
    unchanged, none = mix_in_batch(waves, lengths, sample_rate=16000, prob=0.0)
    assert none == 0 and torch.equal(unchanged, waves)


def _sums(values: set[float]) -> set[float]:
    out = set(values)
    for a in values:
        for b in values:
            out |= {a + b, 2 * a, a + 2 * b, 3 * a}
    return out


def test_the_loss_reads_masked_tokens_only(corpus):
    model = build_model(TINY)
    waves = torch.randn(2, 32000) * 0.1
    lengths = torch.tensor([32000, 32000])
    with torch.no_grad():
        stacked, valid = model.backbone.frames.tokens(waves, lengths)
    codes = model.quantizer(stacked)
    cqt = torch.zeros(2, codes.shape[1], CQT_BINS)
    mask = span_mask(valid, codes.shape[1], prob=0.5, span=5, generator=torch.Generator().manual_seed(1))
    model.eval()
    loss, metrics = model(waves, lengths, mask, codes, cqt, cqt_weight=1.0)
    changed = codes.clone()
    changed[~mask] = (changed[~mask] + 1) % 64  # other targets where nothing is masked
    again, _ = model(waves, lengths, mask, changed, cqt, cqt_weight=1.0)
    assert torch.isfinite(loss) and float(loss.detach()) == pytest.approx(float(again.detach()))
    assert metrics["masked_tokens"] == float(mask.sum()) and "cqt_mse" in metrics and 1 <= metrics["ppl0"] <= 64


@pytest.mark.parametrize("targets", ["bestrq", "kmeans"])
def test_killed_and_resumed_equals_uninterrupted_and_the_result_is_an_encoder(corpus, tmp_path, targets):
    from safetensors.torch import load_file

    from mirkit.encoders import load_encoder

    config = replace(TINY, targets=targets, kmeans_clusters=8)
    whole = pretrain(corpus=corpus, out_dir=tmp_path / "whole", config=config, progress=False, workers=0)
    assert whole is not None and whole.steps == 6 and whole.skipped_steps == 0
    assert pretrain(corpus=corpus, out_dir=tmp_path / "killed", config=config, progress=False, workers=0,
                    stop_after_steps=3) is None
    resumed = pretrain(corpus=corpus, out_dir=tmp_path / "killed", config=config, progress=False, workers=0)
    assert resumed is not None and resumed.resumed_from_step == 2  # the last checkpoint before the kill
    a, b = load_file(str(tmp_path / "whole/final/model.safetensors")), load_file(str(tmp_path / "killed/final/model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    history = [json.loads(line) for line in (tmp_path / "killed/history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "whole/checkpoints/step-0000004/model.safetensors").is_file()
    encoder = load_encoder(str(tmp_path / "whole/final"))
    assert encoder.spec.num_layers == 3 and encoder.weights_revision.startswith("sha256:")
    assert not torch.equal(encoder.mel_mean, torch.zeros_like(encoder.mel_mean))  # statistics were fitted
    out = encoder(torch.randn(1, 16000))
    assert out.hidden[2].shape == (1, 25, 32)


def test_bad_input_is_refused_with_the_fix(corpus, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="mirkit data corpus"):
        pretrain(corpus=empty, out_dir=tmp_path / "a", config=TINY, progress=False, workers=0)
    (empty / "corpus.jsonl").write_text("")
    with pytest.raises(ConfigError, match="lists no audio"):
        pretrain(corpus=empty, out_dir=tmp_path / "a", config=TINY, progress=False, workers=0)
    pretrain(corpus=corpus, out_dir=tmp_path / "b", config=TINY, progress=False, workers=0, stop_after_steps=2)
    with pytest.raises(CheckpointError, match=r"another config \(batch_size differ\)"):
        pretrain(corpus=corpus, out_dir=tmp_path / "b", config=replace(TINY, batch_size=3), progress=False, workers=0)
    with pytest.raises(ConfigError, match="batch_size=1"):
        replace(TINY, batch_size=1).validate()


def test_non_finite_losses_are_skipped_then_abort(corpus, tmp_path, monkeypatch):
    from mirkit.pretrain import objective

    original = objective.MaskedPredictionModel.forward

    def poisoned(self, *args, **kwargs):
        loss, metrics = original(self, *args, **kwargs)
        return loss * float("nan"), metrics

    monkeypatch.setattr(objective.MaskedPredictionModel, "forward", poisoned)
    with pytest.raises(TrainingError, match="3 steps in a row had a non-finite loss"):
        pretrain(corpus=corpus, out_dir=tmp_path, config=replace(TINY, max_bad_steps=3), progress=False, workers=0)


def test_the_command_line_defaults_are_the_library_defaults():
    from mirkit.cli.main import build_parser
    from mirkit.cli.options import config_from_args

    args = build_parser().parse_args(["pretrain", "--corpus", "c", "--out", "o"])
    assert config_from_args(PretrainConfig, args) == PretrainConfig()
    args = build_parser().parse_args(["pretrain", "--corpus", "c", "--out", "o", "--targets", "kmeans", "--lr", "1e-3"])
    assert config_from_args(PretrainConfig, args) == replace(PretrainConfig(), targets="kmeans", learning_rate=1e-3)


def test_mert_arch_saves_a_checkpoint_plain_transformers_loads_without_missing_keys(corpus, tmp_path):
    import transformers

    from mirkit.encoders import load_encoder

    config = replace(TINY, arch="mert", preset="tiny", steps=2, checkpoint_every=2)
    pretrain(corpus=corpus, out_dir=tmp_path / "run", config=config, progress=False, workers=0)
    _, info = transformers.HubertModel.from_pretrained(str(tmp_path / "run/final"), output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected or mismatched keys
    encoder = load_encoder(str(tmp_path / "run/final"))
    assert encoder.spec.family == "hf-mert" and encoder.spec.num_layers == 3 and encoder.spec.sample_rate == 24000
    out = encoder(torch.randn(1, 24000))
    assert out.hidden[2].shape[-1] == 32 and abs(out.hidden[2].shape[1] - 75) <= 1
    twin = load_encoder("random:" + str(tmp_path / "run/final"))
    assert twin.spec.num_layers == 3 and twin.weights_revision == "random-seed0"


def test_continued_pretraining_starts_from_the_published_weights(corpus, tmp_path):
    from safetensors.torch import load_file

    from mirkit.encoders import mert
    from mirkit.encoders.hf import init_random_checkpoint
    from tests.unit.test_hf import TINY as HF_TINY

    checkpoint = init_random_checkpoint("mert-v1-95m", out_dir=tmp_path / "published", seed=5,
                                        config_overrides=HF_TINY["mert-v1-95m"])
    config = replace(TINY, arch="mert", preset="tiny", init="mert-v1-95m", weights=str(checkpoint))
    model = build_model(config)
    published = mert.fold_state_dict(load_file(str(checkpoint / "model.safetensors")))
    mine = mert.fold_state_dict({k.replace("parametrizations.weight.original0", "weight_g")
                                 .replace("parametrizations.weight.original1", "weight_v"): v
                                 for k, v in model.backbone.model.state_dict().items()})
    assert published.keys() == mine.keys()
    assert all(torch.allclose(published[k], mine[k], atol=1e-6) for k in published)
    with pytest.raises(ConfigError, match="--init and --weights go together"):
        replace(TINY, arch="mert", init="mert-v1-95m").validate()
    with pytest.raises(ConfigError, match="needs --arch mert"):
        build_model(replace(TINY, init="mert-v1-95m", weights=str(checkpoint)))
    with pytest.raises(ConfigError, match="not a --arch mert size"):
        replace(TINY, arch="mert", preset="base").validate()


@pytest.mark.parametrize("arch", ["mel", "mert"])
def test_codec_targets_are_encodec_codes_at_the_token_rate(corpus, tmp_path, arch):
    from mirkit.encoders.hf import init_random_checkpoint
    from mirkit.pretrain.quantizers import CodecQuantizer
    from tests.unit.test_hf import TINY as HF_TINY

    codec = init_random_checkpoint("encodec-24khz", out_dir=tmp_path / "encodec", config_overrides=HF_TINY["encodec-24khz"])
    config = replace(TINY, arch=arch, targets="codec", codec_weights=str(codec), steps=2, checkpoint_every=2)
    model = build_model(config)
    assert isinstance(model.quantizer, CodecQuantizer) and model.quantizer.codebooks == 8
    assert len(model.heads) == 8 and not any(k.startswith("quantizer") for k in model.state_dict())  # not saved
    rate = model.backbone.sample_rate
    codes = model.quantizer(torch.randn(2, rate) * 0.1)
    tokens = int(model.backbone.frames.config.token_lengths(rate))
    assert codes.shape[0] == 2 and codes.shape[2] == 8 and abs(codes.shape[1] - tokens) <= 1
    report = pretrain(corpus=corpus, out_dir=tmp_path / "run", config=config, progress=False, workers=0)
    assert report is not None and report.last["masked_tokens"] > 0 and "acc7" in report.last
    with pytest.raises(ConfigError, match="--targets codec needs EnCodec 24 kHz"):
        replace(TINY, targets="codec").validate()


@pytest.mark.parametrize("method, settings, pattern", [
    ("adapter", {"adapter_size": 4}, None), ("prompt", {"prompt_tokens": 2}, None),
    ("lora", {"lora_rank": 2}, r"^blocks\.\d\.attention\.(q_proj|v_proj)\.lora_[AB]\."),
    ("ia3", {}, r"^blocks\.\d\.(attention\.(k_proj|v_proj)|feed_forward\.3)\.ia3_l\."),
    ("bitfit", {}, r"\.bias$"), ("finetune", {"top_blocks": 1}, r"^blocks\.1\.")])
def test_a_pretrained_mel_encoder_can_be_tuned_with_every_method(corpus, tmp_path, method, settings, pattern):
    """Every method with its default targets: LoRA on the attention's q/v projections (as the PETL paper),
    prefixes through q/out, IA3 on k/v and the feed-forward output."""
    from mirkit.encoders import load_encoder
    from mirkit.tune import apply_method, get_method

    pretrain(corpus=corpus, out_dir=tmp_path / "run", config=replace(TINY, steps=1), progress=False, workers=0)
    encoder = load_encoder(str(tmp_path / "run/final"))
    state = apply_method(encoder, method, get_method(method).config_cls(**settings))
    with torch.no_grad():  # adapters and prefixes start as the identity: open them so that all get a gradient
        for module in state.added.values():
            (module.up.weight if method == "adapter" else module.gate).fill_(0.1)
    out = encoder(torch.randn(2, 16000) * 0.1, torch.tensor([16000, 12000]))
    out.hidden[encoder.spec.num_layers - 1].pow(2).mean().backward()
    named = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
    assert pattern is None or (named and all(re.search(pattern, n) for n, _ in named)), [n for n, _ in named][:4]
    trained = [p for _, p in named] + [p for p in state.added.parameters()]
    assert trained and all(p.grad is not None for p in trained)
    moving = [bool(p.grad.abs().sum() > 0) for p in trained]
    assert all(moving) or (method == "lora" and any(moving))  # LoRA's B starts at zero: A waits one step


def _packed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` in ``nn.MultiheadAttention``'s packed layout (how mirkit saved mel transformers before)."""
    out = {k: v for k, v in state.items() if not re.search(r"attention\.[qkv]_proj\.", k)}
    for stem in {k[: k.index("attention.q_proj.")] for k in state if "attention.q_proj." in k}:
        for kind, packed in (("weight", "in_proj_weight"), ("bias", "in_proj_bias")):
            out[f"{stem}attention.{packed}"] = torch.cat([state[f"{stem}attention.{p}_proj.{kind}"] for p in "qkv"])
    return out


def test_the_attention_computes_what_multihead_attention_does_and_old_weights_load(corpus, tmp_path):
    from safetensors.torch import load_file, save_file

    from mirkit.encoders import load_encoder
    from mirkit.encoders.mel_transformer import SelfAttention
    from mirkit.train.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    reference = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    for p in reference.parameters():  # non-zero biases too
        torch.nn.init.normal_(p, std=0.3)
    mine = SelfAttention(16, 4, dropout=0.0).eval()
    mine.load_state_dict(reference.state_dict())  # the packed layout is split on load
    x, padding = torch.randn(2, 7, 16), torch.arange(7)[None] >= torch.tensor([[7], [4]])
    expected, _ = reference(x, x, x, key_padding_mask=padding, need_weights=False)
    torch.testing.assert_close(mine(x, padding), expected, rtol=1e-5, atol=1e-5)
    assert {k.removeprefix("attention.") for k in _packed({f"attention.{k}": v for k, v in mine.state_dict().items()})
            } == set(reference.state_dict())

    stopped = tmp_path / "run"
    assert pretrain(corpus=corpus, out_dir=stopped, config=TINY, progress=False, workers=0, stop_after_steps=2) is None
    # an encoder folder written in the packed layout loads to the same function
    old = tmp_path / "old"
    old.mkdir()
    (old / "mirkit-encoder.json").write_text((stopped / "checkpoints/step-0000002/mirkit-encoder.json").read_text())
    save_file(_packed(load_file(str(stopped / "checkpoints/step-0000002/model.safetensors"))),
              str(old / "model.safetensors"))
    wave = torch.randn(1, 16000)
    new_out = load_encoder(str(stopped / "checkpoints/step-0000002"))(wave)
    old_out = load_encoder(str(old))(wave)
    torch.testing.assert_close(old_out.hidden[2], new_out.hidden[2], rtol=1e-5, atol=1e-5)
    # a run whose saved state is packed is refused with the way out, not resumed with a mismatched optimizer
    tensors, trainer = load_checkpoint(stopped / "state")
    save_checkpoint(stopped / "state", step=int(trainer["step"]), tensors=_packed(tensors), trainer=trainer)
    with pytest.raises(CheckpointError, match="split its attention into q/k/v"):
        pretrain(corpus=corpus, out_dir=stopped, config=TINY, progress=False, workers=0)


def test_a_resumed_run_may_change_its_length_and_records_it(corpus, tmp_path):
    config = replace(TINY, steps=6)
    assert pretrain(corpus=corpus, out_dir=tmp_path, config=config, progress=False, workers=0,
                    stop_after_steps=4) is None  # the checkpoint of step 4 is kept
    with pytest.raises(CheckpointError, match="not past the saved step 4"):
        pretrain(corpus=corpus, out_dir=tmp_path, config=replace(config, steps=4), progress=False, workers=0)
    longer = pretrain(corpus=corpus, out_dir=tmp_path, config=replace(config, steps=8), progress=False, workers=0)
    assert longer is not None and longer.steps == 8 and longer.resumed_from_step == 4
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["schedule_changes"] == [{"at_step": 4, "from_steps": 6, "to_steps": 8}] and run["config"]["steps"] == 8
    history = [json.loads(line)["step"] for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert history == list(range(1, 9))
    # the cosine now ends at step 8: the last step's learning rate is near zero, not the 6-step schedule's
    assert json.loads((tmp_path / "history.jsonl").read_text().splitlines()[-1])["lr"] < 0.2 * TINY.learning_rate


def test_logfreq_front_end_resolves_semitones_and_pretrains(corpus, tmp_path):
    from mirkit.audio.filters import logfreq_basis
    from mirkit.encoders import load_encoder

    basis = logfreq_basis(sample_rate=16000, n_fft=4096, n_bins=96, fmin_hz=32.70319566257483, bins_per_octave=12)
    assert basis.shape == (96, 2049) and np.allclose(basis.sum(axis=1), 1.0, atol=1e-5)
    t = np.arange(4096) / 16000
    for semitone in (9, 21, 45, 46, 80):  # A1, A2, A4, A#4, G#7 above C1
        tone = np.sin(2 * np.pi * 32.70319566257483 * 2 ** (semitone / 12) * t) * np.hanning(4096)
        assert int(np.argmax(basis @ np.abs(np.fft.rfft(tone)) ** 2)) == semitone
    report = pretrain(corpus=corpus, out_dir=tmp_path / "run", config=replace(TINY, preset="tiny-logfreq", steps=2,
                      checkpoint_every=2), progress=False, workers=0)
    assert report is not None and report.steps == 2
    encoder = load_encoder(str(tmp_path / "run/final"))
    assert encoder.config.frontend == "logfreq" and encoder.spec.layers[0].frame_rate_hz == 25.0
    assert encoder(torch.randn(1, 32000)).hidden[1].shape == (1, 50, 32)  # 2 s at 25 tokens/s
