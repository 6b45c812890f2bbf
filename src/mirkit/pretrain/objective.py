"""The masked-prediction model: an encoder, one classification head per codebook and a CQT head.

Loss (HuBERT / MERT): cross-entropy of each codebook's code on masked valid tokens, averaged over
codebooks, plus ``cqt_weight`` x MSE of the CQT reconstruction on the same tokens. Metrics per
step: masked accuracy and target-code perplexity (usage) per codebook, CQT error.
"""

from __future__ import annotations

import torch
from torch import nn

from mirkit.pretrain.teachers import CQT_BINS


class MaskedPredictionModel(nn.Module):
    """``backbone`` (see :mod:`mirkit.pretrain.backbones`), a frozen ``quantizer`` and the heads."""

    def __init__(self, backbone: nn.Module, quantizer: nn.Module) -> None:
        super().__init__()
        dim = backbone.dim
        self.backbone = backbone
        self.quantizer = quantizer  # frozen: buffers only
        self.heads = nn.ModuleList(nn.Linear(dim, quantizer.codebook_size) for _ in range(quantizer.codebooks))
        self.cqt_head = nn.Linear(dim, CQT_BINS)

    def forward(self, mixed: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor, codes: torch.Tensor,
                cqt: torch.Tensor, *, cqt_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss and metrics for one micro-batch; ``codes`` ``(batch, tokens, codebooks)`` and ``cqt``
        ``(batch, tokens, bins)`` come from the clean audio, ``mixed`` is what the encoder sees."""
        hidden, valid = self.backbone.encode_masked(mixed, lengths, mask)
        last = hidden[-1]
        tokens = min(last.shape[1], codes.shape[1], cqt.shape[1])
        selected = mask[:, :tokens] & (torch.arange(tokens, device=last.device)[None] < valid[:, None])
        if not bool(selected.any()):
            zero = last.sum() * 0.0
            return zero, {"masked_tokens": 0.0}
        h = last[:, :tokens][selected]
        metrics: dict[str, float] = {"masked_tokens": float(selected.sum())}
        losses = []
        for c, head in enumerate(self.heads):
            target = codes[:, :tokens, c][selected]
            logits = head(h).float()
            losses.append(nn.functional.cross_entropy(logits, target))
            metrics[f"acc{c}"] = float((logits.argmax(dim=-1) == target).float().mean())
            usage = torch.bincount(target, minlength=logits.shape[-1]).float()
            p = usage / usage.sum()
            metrics[f"ppl{c}"] = float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))
        loss = torch.stack(losses).mean()
        metrics["ce"] = float(loss.detach())
        if cqt_weight > 0:
            cqt_error = nn.functional.mse_loss(self.cqt_head(h).float(), cqt[:, :tokens][selected].float())
            loss = loss + cqt_weight * cqt_error
            metrics["cqt_mse"] = float(cqt_error.detach())
        return loss, metrics
