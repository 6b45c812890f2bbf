"""The masked-prediction model: an encoder, one classification head per codebook and a CQT head.

Loss (HuBERT / MERT): cross-entropy of each codebook's code on masked valid tokens, averaged over
codebooks, plus ``cqt_weight`` x MSE of the CQT reconstruction on the same tokens, plus, for each
distillation teacher (:mod:`mirkit.pretrain.distill`), its weight x its loss on every valid token
the teacher has a target for. Metrics per step: masked accuracy and target-code perplexity (usage)
per codebook, CQT error, each teacher's loss (``distill_<name>``).
"""

from __future__ import annotations

import torch
from torch import nn

from mirkit.pretrain.teachers import CQT_BINS


class MaskedPredictionModel(nn.Module):
    """``backbone`` (see :mod:`mirkit.pretrain.backbones`), a frozen ``quantizer`` and the heads."""

    def __init__(self, backbone: nn.Module, quantizer: nn.Module, teachers: dict[str, float] | None = None) -> None:
        super().__init__()
        from mirkit.pretrain.distill import TEACHERS

        dim = backbone.dim
        self.backbone = backbone
        self.quantizer = quantizer  # frozen: buffers only
        self.heads = nn.ModuleList(nn.Linear(dim, quantizer.codebook_size) for _ in range(quantizer.codebooks))
        self.cqt_head = nn.Linear(dim, CQT_BINS)
        self.teachers = [(TEACHERS.get(name), weight) for name, weight in (teachers or {}).items()]
        self.distill_heads = nn.ModuleDict({spec.name: nn.Linear(dim, spec.dim) for spec, _ in self.teachers})

    def forward(self, mixed: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor, codes: torch.Tensor,
                cqt: torch.Tensor, *, cqt_weight: float, distill: torch.Tensor | None = None,
                present: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss and metrics for one micro-batch; ``codes`` ``(batch, tokens, codebooks)``, ``cqt``
        ``(batch, tokens, bins)`` and the teachers' ``distill`` ``(batch, tokens, dims)`` with ``present``
        ``(batch, tokens, teachers)`` come from the clean audio, ``mixed`` is what the encoder sees."""
        hidden, valid = self.backbone.encode_masked(mixed, lengths, mask)
        last = hidden[-1]
        tokens = min(last.shape[1], codes.shape[1], cqt.shape[1])
        in_item = torch.arange(tokens, device=last.device)[None] < valid[:, None]
        selected = mask[:, :tokens] & in_item
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
        if self.teachers and distill is not None and present is not None:
            loss = loss + self._distill(last[:, :tokens], in_item, distill[:, :tokens], present[:, :tokens], metrics)
        return loss, metrics

    def _distill(self, last: torch.Tensor, in_item: torch.Tensor, distill: torch.Tensor, present: torch.Tensor,
                 metrics: dict[str, float]) -> torch.Tensor:
        """Each teacher's weighted loss on the valid tokens it has a target for."""
        total = last.sum() * 0.0
        column = 0
        for t, (spec, weight) in enumerate(self.teachers):
            rows = in_item & present[..., t]
            target = distill[..., column:column + spec.dim][rows].float()
            column += spec.dim
            if not bool(rows.any()):
                continue
            prediction = self.distill_heads[spec.name](last[rows]).float()
            if spec.loss == "mse":
                value = nn.functional.mse_loss(prediction, target)
            else:
                soft = torch.sigmoid(target) if spec.loss == "bce_logits" else target.clamp(0.0, 1.0)
                value = nn.functional.binary_cross_entropy_with_logits(prediction, soft)
            metrics[f"distill_{spec.name}"] = float(value.detach())
            total = total + weight * value
        return total
