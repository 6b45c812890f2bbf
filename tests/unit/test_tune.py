"""`mirkit tune`: methods train exactly their parameters, start from the frozen function, save/load,
resume bit for bit, and fail clearly. Tiny encoders and a tiny rendered suite; CPU only."""

from __future__ import annotations

import re

import pytest
import torch

from mirkit.encoders import load_encoder
from mirkit.errors import ConfigError
from mirkit.tune import TuneConfig, get_method
from mirkit.tune.methods import apply_method

FAST = TuneConfig(max_epochs=2, batch_size=4, crop_s=1.0, checkpoint_every=2)


def options(method: str, **values):
    """The method's own config with ``values`` set."""
    return get_method(method).config_cls(**values)


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _changed(model, before):
    return {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}


CASES = [  # (encoder, method, options, what must change besides the head)
    ("tiny-test", "probe", {}, ""),
    ("tiny-test", "finetune", {}, r"^encoder\.conv\d\."),
    ("tiny-test", "finetune", {"freeze_frontend": True}, r"^encoder\.conv[12]\."),
    ("tiny-test", "finetune", {"top_blocks": 1}, r"^encoder\.conv2\."),
    ("tiny-test", "bitfit", {}, r"^encoder\.conv\d\.bias$"),
    ("tiny-test", "adapter", {"adapter_size": 4}, r"^method\.added\."),
    ("tiny-test", "lora", {"lora_rank": 2}, r"\.lora_[AB]\."),
    ("tiny-test", "scratch", {}, r"^encoder\.blocks\."),
    ("hubert", "adapter", {"adapter_size": 4}, r"^method\.added\."),
    ("hubert", "adapter", {"adapter_size": 4, "adapter_mode": "parallel"}, r"^method\.added\."),
    ("hubert", "prompt", {"prompt_tokens": 3}, r"^method\.added\."),
    ("hubert", "prompt", {"prompt_tokens": 3, "prompt_depth": "shallow"}, r"^method\.added\.[^.]*layers__0__"),
    ("hubert", "lora", {}, r"attention\.(q_proj|v_proj)\.lora_[AB]\."),
    ("hubert", "ia3", {}, r"\.ia3_l\."),
]


@pytest.mark.parametrize("encoder, method, settings", [
    ("tiny-test", "adapter", {}), ("hubert", "adapter", {}), ("hubert", "adapter", {"adapter_mode": "parallel"}),
    ("hubert", "prompt", {}), ("hubert", "prompt", {"prompt_depth": "shallow"}),
])
def test_adapters_and_prompts_start_as_the_frozen_encoder(hubert, encoder, method, settings):
    weights = hubert if encoder == "hubert" else None
    name = "hubert-base" if encoder == "hubert" else encoder
    enc = load_encoder(name, weights_dir=weights)
    wave = torch.randn(2, enc.spec.sample_rate) * 0.1
    lengths = torch.tensor([enc.spec.sample_rate, enc.spec.sample_rate // 2])
    with torch.no_grad():
        plain = enc(wave, lengths)
        state = apply_method(enc, method, options(method, **settings))
        assert len(state.added) > 0
        added = enc(wave, lengths)
    for layer in plain.hidden:
        torch.testing.assert_close(added.hidden[layer], plain.hidden[layer], rtol=0, atol=1e-6)
    # and they are live: a non-zero up-projection / gate changes the output
    with torch.no_grad():
        for module in state.added.values():
            (module.up.weight if method == "adapter" else module.gate).fill_(0.5)
        moved = enc(wave, lengths)
    assert not torch.allclose(moved.hidden[enc.spec.num_layers - 1], plain.hidden[enc.spec.num_layers - 1])


def test_bad_method_settings_name_the_problem(hubert):
    with pytest.raises(ConfigError, match="q_proj/out_proj|no default targets"):
        apply_method(load_encoder("tiny-test"), "prompt")
    with pytest.raises(ConfigError, match="match no module of encoder 'tiny-test'; some of its modules: conv0"):
        apply_method(load_encoder("tiny-test"), "adapter", options("adapter", targets=r"attention$"))
    with pytest.raises(ConfigError, match="--top-blocks 9"):
        apply_method(load_encoder("tiny-test"), "finetune", options("finetune", top_blocks=9))
    with pytest.raises(ConfigError, match="parallel adapter on 'conv0'"):  # strided: output length differs
        enc = load_encoder("tiny-test")
        apply_method(enc, "adapter", options("adapter", adapter_mode="parallel", targets="^conv0$"))
        enc(torch.randn(1, 8000))
    with pytest.raises(ConfigError, match="batch_size=1"):
        TuneConfig(batch_size=1).validate()


@pytest.mark.parametrize("encoder", ["random:musicnn-mtt", "random:crepe-tiny"])
@pytest.mark.parametrize("method", ["adapter", "lora", "dora", "ia3", "bitfit", "finetune"])
def test_every_cnn_method_runs_on_the_real_architectures(encoder, method):
    """musicnn and CREPE (random weights, real shapes): forward + backward reach exactly the method's parameters."""
    enc = load_encoder(encoder, frame_rate_hz=5.0 if "crepe" in encoder else None)
    state = apply_method(enc, method)
    rate = enc.spec.sample_rate
    wave = torch.randn(2, 3 * rate) * 0.1
    out = enc(wave, torch.tensor([3 * rate, 2 * rate]))
    last = enc.spec.num_layers - 1
    out.hidden[last].float().pow(2).mean().backward()
    params = dict(enc.named_parameters())
    params.update({f"added.{n}": p for n, p in nn_module_dict(state.added).named_parameters()})
    trainable = {n: p for n, p in params.items() if p.requires_grad}
    assert trainable, f"{method} trains nothing on {encoder}"
    assert all(p.grad is not None for p in trainable.values()), [n for n, p in trainable.items() if p.grad is None][:5]
    # zero-initialised halves (LoRA's B, the adapters' up-projection) leave their partner without a gradient at
    # step 0; every other trained tensor gets one, and frozen ones get none
    live = [n for n, p in trainable.items() if p.grad.abs().sum() > 0]
    silent = [n for n in trainable if n not in live and not re.search(r"lora_A|\.down\.", n)]
    assert len(silent) <= 2, silent[:5]  # at most the batch-norm shift after the last layer used
    assert all(p.grad is None for n, p in params.items() if not p.requires_grad)


def nn_module_dict(added) -> torch.nn.ModuleDict:
    return torch.nn.ModuleDict({k.replace(".", "__"): v for k, v in dict(added).items()})


def test_autocast_is_bf16_on_cuda_and_off_on_cpu():
    import warnings

    from mirkit.tune.inference import autocast

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # without CUDA torch disables it, with a warning; the settings remain
        cuda = autocast(torch.device("cuda"))
    assert cuda.device == "cuda" and cuda.fast_dtype == torch.bfloat16
    assert autocast(torch.device("cpu"))._enabled is False


