"""MERT checkpoints without ``trust_remote_code``.

MERT-v1 (Li et al. 2023) is a HuBERT-architecture model: its ``MERTModel`` code on the hub adds
options that the published v1 checkpoints leave off (CQT feature extractor, DeepNorm). So
mirkit loads the published weights into transformers' ``HubertModel`` after translating
``config.json``, and refuses configs that need the extra code, naming the option.

The positional convolution is weight-normalised. Checkpoints store it three ways, all accepted:
``weight_g``/``weight_v`` (the original file), ``parametrizations.weight.original0/1`` (newer
exports), or one folded ``weight`` (the layout of ``shared/fixtures/mert-v1-95m-state-dict.json``).
mirkit removes the parametrisation from the module and always holds the folded weight.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mirkit.encoders.spec import EncoderSpec
from mirkit.errors import CheckpointError, ConfigError
from mirkit.files import atomic_write_text

POS_CONV = "encoder.pos_conv_embed.conv"

def hubert_config_from_mert(config: dict[str, object], *, source: str = "config.json"):
    """Translate a MERT ``config.json`` dict into a ``HubertConfig``."""
    from transformers import HubertConfig

    if config.get("feature_extractor_cqt"):
        raise ConfigError(f"{source}: feature_extractor_cqt=true needs MERT's remote code (a CQT branch in the input); "
                          "mirkit loads MERT without trust_remote_code and supports only the published v1 setting (false).")
    if config.get("deepnorm"):
        raise ConfigError(f"{source}: deepnorm=true changes the residual scaling and needs MERT's remote code; "
                          "the published v1 checkpoints use false.")
    # attention_relax only rescales inside the softmax for fp16 stability: the same function in exact
    # arithmetic, so HubertModel's attention reproduces it.
    known = HubertConfig().to_dict()
    values = {k: v for k, v in config.items() if k in known and k not in ("architectures", "model_type", "auto_map")}
    return HubertConfig(**values)


def mert_config_dict(name: str | EncoderSpec, overrides: dict[str, object] | None = None) -> dict[str, object]:
    """The published-style config.json of encoder ``name`` (``model_type: mert_model``; the shape is
    its zoo entry's), with overrides."""
    from mirkit.encoders.zoo import get_spec

    spec = get_spec(name) if isinstance(name, str) else name
    if spec.hf is None or spec.hf.kind != "mert":
        raise ConfigError(f"{spec.name!r} is not a MERT encoder; expected one of "
                          f"{[s.name for s in _mert_specs()]}.")
    return {"architectures": ["MERTModel"], "model_type": "mert_model", "sample_rate": spec.sample_rate,
            "feature_extractor_cqt": False, "deepnorm": False, "attention_relax": -1.0,
            **spec.hf.config_dict(), **(overrides or {})}


def _mert_specs():
    from mirkit.encoders.zoo import list_specs

    return [s for s in list_specs() if s.hf is not None and s.hf.kind == "mert"]


def remove_weight_norm(model: torch.nn.Module) -> None:
    """Replace the positional conv's weight-norm parametrisation by its folded plain weight."""
    from torch.nn.utils import parametrize

    conv = model.get_submodule(POS_CONV)
    if parametrize.is_parametrized(conv, "weight"):
        parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)
    elif hasattr(conv, "weight_g"):  # old-style torch.nn.utils.weight_norm
        torch.nn.utils.remove_weight_norm(conv)


def _fold(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """weight = g * v / ||v||, the norm taken over every dim but 2 (HuBERT's weight_norm dim)."""
    norm = v.norm(dim=(0, 1), keepdim=True)
    return g * v / norm


def fold_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Any of the three pos-conv layouts -> the folded one; other keys untouched."""
    state = dict(state)
    for g_key, v_key in ((f"{POS_CONV}.weight_g", f"{POS_CONV}.weight_v"),
                         (f"{POS_CONV}.parametrizations.weight.original0", f"{POS_CONV}.parametrizations.weight.original1")):
        if g_key in state and v_key in state:
            state[f"{POS_CONV}.weight"] = _fold(state.pop(g_key).float(), state.pop(v_key).float())
    return state


def read_state_dict(directory: Path) -> dict[str, torch.Tensor]:
    """``model.safetensors`` (preferred) or ``pytorch_model.bin`` from ``directory``."""
    safetensors_path, bin_path = directory / "model.safetensors", directory / "pytorch_model.bin"
    if safetensors_path.is_file():
        from safetensors.torch import load_file

        return load_file(str(safetensors_path))
    if bin_path.is_file():
        return torch.load(bin_path, map_location="cpu", weights_only=True)
    raise CheckpointError(f"{directory} holds neither model.safetensors nor pytorch_model.bin; expected a MERT "
                          "checkpoint folder (config.json + weights), e.g. from `mirkit encoders init mert-v1-95m --random`.")


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in ("hubert.", "mert.", "model."):
        if state and all(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items()}
    return dict(state)


def weight_norm_state(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A MERT state dict (any of the three pos-conv layouts, optional prefix) in the layout of ``model``,
    a ``HubertModel`` whose positional convolution keeps its weight-norm parametrisation (pretraining)."""
    state = _strip_prefix(state)
    g_key, v_key = f"{POS_CONV}.parametrizations.weight.original0", f"{POS_CONV}.parametrizations.weight.original1"
    if g_key not in model.state_dict():
        return fold_state_dict(state)
    if f"{POS_CONV}.weight_g" in state:
        state[g_key], state[v_key] = state.pop(f"{POS_CONV}.weight_g"), state.pop(f"{POS_CONV}.weight_v")
    elif f"{POS_CONV}.weight" in state:  # folded: any (g, v) with g * v / |v| = weight; take v = weight
        weight = state.pop(f"{POS_CONV}.weight").float()
        state[g_key], state[v_key] = weight.norm(dim=(0, 1), keepdim=True), weight
    return state


def load_mert_state(model: torch.nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load a MERT state dict (any layout, optional ``hubert.``/``mert.`` prefix) strictly into ``model``."""
    state = fold_state_dict(_strip_prefix(state))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        detail = "; ".join(part for part in (
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}" if missing else "",
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}" if unexpected else "",
            f"wrong shape {wrong[:5]}" if wrong else "") if part)
        raise CheckpointError(f"{source} does not match the MERT layout of its config.json: {detail}.")
    model.load_state_dict(state, strict=True)


def read_config(directory: Path) -> dict[str, object]:
    path = directory / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}. Expected a Hugging Face checkpoint folder.") from exc


def read_config_file(path: Path) -> dict[str, object]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc


def write_json(path: Path, data: dict[str, object]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
