"""Transfer methods: which encoder parameters train, and what is added to the encoder.

Each :class:`MethodSpec` is registered in :data:`METHODS`; :func:`apply_method` freezes the
encoder, adds the method's modules (adapters, gated prefixes, LoRA/IA3 layers through ``peft``)
and marks exactly the parameters the method trains. The head is not part of this; it always trains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from mirkit.errors import ConfigError
from mirkit.registry import Registry
from mirkit.tune.inject import add_adapters, add_prefixes, matching_modules


@dataclass(frozen=True)
class MethodSpec:
    """One transfer method.

    Attributes:
        name: registry key and the ``--method`` value.
        family: ``probe``, ``full``, ``adapter``, ``prompt``, ``reparameterisation`` or ``scratch``.
        trains: what is trained besides the head, in words.
        applies_to: which encoders it works on, in words.
        learning_rate: default learning rate of the trained encoder-side parameters (the head uses ``head_lr``).
    """

    name: str
    family: str
    trains: str
    applies_to: str
    learning_rate: float


METHODS: Registry[MethodSpec] = Registry("method", listing_hint="mirkit tune --list-methods")
for _m in (
    MethodSpec("probe", "probe", "nothing (frozen encoder, same head as `mirkit probe`)", "every encoder", 0.0),
    MethodSpec("finetune", "full", "all encoder weights (options: freeze the front-end, train only the top N blocks)",
               "every encoder with weights", 1e-4),
    MethodSpec("adapter", "adapter", "bottleneck adapters after (sequential) or beside (parallel) target blocks",
               "transformers (attention + feed-forward), musicnn and CREPE (conv blocks); others with --targets", 1e-3),
    MethodSpec("prompt", "prompt", "gated prefix tokens in the first (shallow) or every (deep) attention layer",
               "transformer encoders with q_proj/out_proj attention (wav2vec2 family, MERT, Whisper)", 1e-3),
    MethodSpec("lora", "reparameterisation", "low-rank updates of linear and convolution weights (peft LoRA)",
               "every encoder with Linear/Conv layers", 1e-3),
    MethodSpec("ia3", "reparameterisation", "learned rescaling of activations (peft IA3)",
               "encoders with Linear/Conv2d layers", 1e-3),
    MethodSpec("bitfit", "reparameterisation", "biases only (including normalisation shifts)", "encoders with biases",
               1e-3),
    MethodSpec("scratch", "scratch", "a small CNN on a log-mel or CQT input, from random initialisation",
               "replaces the encoder (the encoder only sets the sample rate)", 1e-3),
):
    METHODS.register(_m.name, _m)

#: Default module-name patterns (``re.search``) per encoder family: adapter/prompt/LoRA/IA3 targets,
#: the front-end (frozen by ``--freeze-frontend``) and the ordered blocks (for ``--top-blocks``).
_W2V = {"adapter": r"encoder\.layers\.\d+\.(attention|feed_forward)$", "prompt": r"encoder\.layers\.\d+\.attention$",
        "lora": r"encoder\.layers\.\d+\.attention\.(q_proj|v_proj)$",
        "ia3": r"encoder\.layers\.\d+\.(attention\.(k_proj|v_proj)|feed_forward\.output_dense)$",
        "ia3_ff": r"feed_forward\.output_dense$",
        "frontend": r"^model\.(feature_extractor|feature_projection|masked_spec_embed)", "blocks": r"^model\.encoder\.layers\.(\d+)\."}
TARGETS: dict[str, dict[str, str]] = {
    "hf-wav2vec2": _W2V,
    "hf-mert": _W2V,
    "hf-whisper": {"adapter": r"layers\.\d+\.(self_attn|fc2)$", "prompt": r"layers\.\d+\.self_attn$",
                   "lora": r"layers\.\d+\.self_attn\.(q_proj|v_proj)$",
                   "ia3": r"layers\.\d+\.(self_attn\.(k_proj|v_proj)|fc2)$", "ia3_ff": r"fc2$",
                   "frontend": r"^model\.(conv1|conv2|embed_positions)", "blocks": r"^model\.layers\.(\d+)\."},
    "musicnn": {"adapter": r"net\.(mid\.\d+|penultimate)$",
                "lora": r"net\.(timbral\.\d+|temporal\.\d+|mid\.\d+|penultimate)$",
                "ia3": r"net\.(timbral\.\d+|temporal\.\d+|penultimate)$", "ia3_ff": r"net\.penultimate$",
                "frontend": r"^net\.(input_bn|timbral|temporal)", "blocks": r"^net\.(?:mid|mid_bn)\.(\d+)\."},
    "crepe": {"adapter": r"net\.conv[2-6]$", "lora": r"net\.conv\d$", "ia3": r"net\.conv\d$", "ia3_ff": r"net\.conv6$",
              "frontend": r"^net\.conv1(_BN)?\.", "blocks": r"^net\.conv(\d)(?:_BN)?\."},
    "test": {"adapter": r"^conv[12]$", "lora": r"^conv\d$", "frontend": r"^conv0\.", "blocks": r"^conv(\d)\."},
}


@dataclass(frozen=True)
class MethodOptions:
    """Method settings (the ones that do not apply to a method are ignored by it)."""

    adapter_size: int = 64
    adapter_mode: str = "sequential"  # sequential | parallel
    prompt_tokens: int = 16
    prompt_depth: str = "deep"  # shallow (first attention layer) | deep (every attention layer)
    lora_rank: int = 8
    lora_alpha: float = 16.0
    targets: str | None = None  # module-name regex overriding the family default
    freeze_frontend: bool = False
    top_blocks: int | None = None
    scratch_input: str = "logmel"  # logmel | cqt
    scratch_channels: int = 32


class MethodState(nn.Module):
    """What a method added to the encoder (adapters, prefixes) and which encoder parameters it trains."""

    def __init__(self) -> None:
        super().__init__()
        self.added = nn.ModuleDict()
        self.trained: list[str] = []  # encoder parameter names (peft layers included)
        self.handles: list[torch.utils.hooks.RemovableHandle] = []


def _family_targets(encoder: nn.Module, key: str, options: MethodOptions, method: str) -> str:
    if options.targets:
        return options.targets
    family = encoder.spec.family
    table = TARGETS.get(family, {})
    if key not in table:
        raise ConfigError(f"method {method!r} has no default targets for encoder {encoder.spec.name!r} (family "
                          f"{family!r}); pass --targets REGEX naming its modules (see `mirkit tune --show-modules "
                          f"{encoder.spec.name}`).")
    return table[key]


def apply_method(encoder: nn.Module, method: str, options: MethodOptions) -> MethodState:
    """Freeze ``encoder``, add ``method``'s modules to it, and unfreeze what the method trains."""
    spec = METHODS.get(method)
    state = MethodState()
    for p in encoder.parameters():
        p.requires_grad_(False)
    name = encoder.spec.name
    if spec.family == "probe":
        return state
    if spec.family == "scratch":  # everything but the handcrafted front-end trains
        for n, p in encoder.named_parameters():
            p.requires_grad_(not n.startswith("frontend."))
        state.trained = [n for n, p in encoder.named_parameters() if p.requires_grad]
        return state
    if method == "finetune":
        params = dict(encoder.named_parameters())
        if not params:
            raise ConfigError(f"encoder {name!r} has no weights to fine-tune; use a learned encoder or --method scratch.")
        chosen = set(params)
        if options.freeze_frontend:
            chosen -= {n for n in chosen if re.search(_family_targets(encoder, "frontend", options, method), n)}
        if options.top_blocks is not None:
            chosen &= _top_blocks(encoder, options.top_blocks)
        for n in chosen:
            params[n].requires_grad_(True)
    elif method == "bitfit":
        for n, p in encoder.named_parameters():
            if n.endswith(".bias"):
                p.requires_grad_(True)
    elif method == "adapter":
        targets = matching_modules(encoder, _family_targets(encoder, "adapter", options, method), what="adapter",
                                   encoder=name)
        state.handles += add_adapters(encoder, targets, size=options.adapter_size, mode=options.adapter_mode,
                                      store=state.added)
    elif method == "prompt":
        if options.prompt_depth not in ("shallow", "deep"):
            raise ConfigError(f"prompt depth {options.prompt_depth!r} must be 'shallow' or 'deep'.")
        targets = matching_modules(encoder, _family_targets(encoder, "prompt", options, method), what="prompt",
                                   encoder=name)
        if options.prompt_depth == "shallow":
            targets = targets[:1]
        state.handles += add_prefixes(targets, tokens=options.prompt_tokens, store=state.added)
    elif method in ("lora", "ia3"):
        _inject_peft(encoder, method, options)
        for n, p in encoder.named_parameters():
            if ("lora_" in n or "ia3_" in n):
                p.requires_grad_(True)
    state.trained = [n for n, p in encoder.named_parameters() if p.requires_grad]
    if not state.trained and not len(state.added):
        raise ConfigError(f"method {method!r} found nothing to train in encoder {name!r}; check --targets / "
                          "--top-blocks, or use --method probe.")
    return state


def _top_blocks(encoder: nn.Module, count: int) -> set[str]:
    pattern = re.compile(_family_targets(encoder, "blocks", MethodOptions(), "finetune"))
    blocks: dict[str, list[str]] = {}
    for n, _ in encoder.named_parameters():
        found = pattern.search(n)
        if found:
            blocks.setdefault(found.group(1), []).append(n)
    order = sorted(blocks, key=int)
    if not 1 <= count <= len(order):
        raise ConfigError(f"--top-blocks {count}: encoder {encoder.spec.name!r} has {len(order)} blocks; "
                          f"choose 1..{len(order)}.")
    return {n for block in order[-count:] for n in blocks[block]}


def _inject_peft(encoder: nn.Module, method: str, options: MethodOptions) -> None:
    from peft import IA3Config, LoraConfig, inject_adapter_in_model

    pattern = _family_targets(encoder, method, options, method)
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d) if method == "lora" else (nn.Linear, nn.Conv2d)
    names = [n for n, _ in matching_modules(encoder, pattern, what=method, encoder=encoder.spec.name, kinds=kinds)]
    if method == "lora":
        if options.lora_rank < 1:
            raise ConfigError(f"LoRA rank {options.lora_rank} must be at least 1.")
        config = LoraConfig(r=options.lora_rank, lora_alpha=options.lora_alpha, target_modules=names, lora_dropout=0.0)
    else:
        # IA3 scales the input of feed-forward output layers and the output of the others (Liu et al. 2022)
        ff = None if options.targets else TARGETS.get(encoder.spec.family, {}).get("ia3_ff")
        config = IA3Config(target_modules=names,
                           feedforward_modules=[n for n in names if ff and re.search(ff, n)])
    inject_adapter_in_model(config, encoder)


def merge_lora(encoder: nn.Module) -> int:
    """Fold LoRA updates into the base weights and drop the LoRA layers; returns how many were merged."""
    from peft.tuners.lora import LoraLayer

    merged = 0
    for name, module in list(encoder.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = encoder.get_submodule(parent_name) if parent_name else encoder
            setattr(parent, child, module.get_base_layer())
            merged += 1
    return merged
