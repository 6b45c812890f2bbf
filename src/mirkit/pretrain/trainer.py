"""The training side of ``mirkit pretrain``: the model of a run and :class:`Pretrainer`, a run with
explicit state and named steps (see :mod:`mirkit.pretrain.run` for the loop, the layout and how
several processes share a batch under ``torchrun``)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from mirkit.encoders.mel_transformer import PACKED_ATTENTION
from mirkit.errors import CheckpointError, ConfigError, TrainingError
from mirkit.files import read_jsonl, write_jsonl
from mirkit.pretrain.backbones import build_backbone
from mirkit.pretrain.config import PretrainConfig
from mirkit.pretrain.data import CorpusFile, CropDataset
from mirkit.pretrain.masking import span_mask
from mirkit.pretrain.mixing import mix_in_batch
from mirkit.pretrain.objective import MaskedPredictionModel
from mirkit.pretrain.quantizers import CodecQuantizer, KMeansQuantizer, RandomProjectionQuantizer
from mirkit.pretrain.teachers import check_cqt_hop, kmeans_features
from mirkit.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from mirkit.train.distributed import Distributed
from mirkit.train.optim import clipped_step, warmup_cosine

LICENCE = "Apache-2.0 (weights trained by mirkit; see the corpus manifest for the audio's licences)"


def build_model(config: PretrainConfig) -> MaskedPredictionModel:
    """The backbone (random weights from ``seed``, or ``--init``'s), the quantizer and the heads, before any
    statistics are fitted."""
    torch.manual_seed(config.seed)
    backbone = build_backbone(config.arch, config.preset, init=config.init, weights=config.weights,
                              dropout=config.dropout)
    check_cqt_hop(backbone.token_hop)
    frames = backbone.frames.config
    if config.targets == "bestrq":
        quantizer: torch.nn.Module = RandomProjectionQuantizer(frames.n_mels * frames.stack, codebooks=config.codebooks,
                                                               codebook_size=config.codebook_size, seed=config.seed)
    elif config.targets == "kmeans":
        quantizer = KMeansQuantizer(frames.n_mels + 12, clusters=config.kmeans_clusters)
    else:
        quantizer = CodecQuantizer(str(config.codec_weights), sample_rate=backbone.sample_rate,
                                   token_rate_hz=frames.token_rate_hz)
    return MaskedPredictionModel(backbone, quantizer, teachers=config.teachers)


class Pretrainer:
    """A run with explicit state and named steps: ``start`` (restore, or fit statistics), ``step``
    (micro-batches -> one optimizer step), ``checkpoint``, ``finish``."""

    def __init__(self, config: PretrainConfig, files: list[CorpusFile], out: Path, *, device: str = "cpu",
                 workers: int = 2, progress: bool = True, dist: Distributed | None = None, teachers=None) -> None:
        config.validate()
        self.config, self.files, self.out, self.progress = config, files, out, progress
        self.dist = dist if dist is not None else Distributed()
        if config.batch_size % self.dist.world_size:
            raise ConfigError(f"--batch-size {config.batch_size} does not split evenly over the {self.dist.world_size} "
                              "processes of this torchrun job; each takes an equal share of every micro-batch (use a "
                              f"multiple of {self.dist.world_size}, e.g. {self.dist.world_size * max(1, config.batch_size // self.dist.world_size)}).")
        self.device = torch.device(device)
        self.model = build_model(config).to(self.device)
        self.net: torch.nn.Module = self.model  # what the training forward runs (DDP under torchrun, after start)
        backbone = self.model.backbone
        self.tokens_per_crop = int(backbone.frames.config.token_lengths(int(round(config.crop_s * backbone.sample_rate))))
        self.dataset = CropDataset(files, sample_rate=backbone.sample_rate, crop_s=config.crop_s, seed=config.seed,
                                   token_hop=backbone.token_hop, tokens_per_crop=self.tokens_per_crop,
                                   cqt=config.cqt_weight > 0, teachers=teachers)
        self.teachers = teachers  # TeacherTargets (``--distill``), or None
        trainable = [p for n, p in self.model.named_parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, betas=(0.9, 0.98), eps=1e-6,
                                           weight_decay=config.weight_decay)
        self.scheduler = warmup_cosine(self.optimizer, total_steps=config.steps, warmup_steps=config.warmup_steps)
        self.workers = workers
        self.step_index = 0
        self.skipped_steps = 0
        self.bad_steps = 0
        self.resumed_from: int | None = None

    # -- start --------------------------------------------------------------------------------------
    def start(self, *, resume: bool) -> None:
        found = load_checkpoint(self.out / "state") if resume else None
        if found is not None:
            tensors, trainer = found
            if any(k.endswith(PACKED_ATTENTION) for k in tensors):
                raise CheckpointError(
                    f"{self.out / 'state'} was written before mirkit's mel transformer split its attention into "
                    "q/k/v projections (it holds packed in_proj_weight tensors), so its optimizer state does not "
                    "fit this version: finish the run with mirkit at commit d2d7b8d or earlier, or start it again "
                    "in a new folder. Its encoder folders (final/, checkpoints/step-N) load in this version.")
            self.model.load_state_dict(tensors, strict=True)
            self.optimizer.load_state_dict(trainer["optimizer"])  # type: ignore[arg-type]
            self.scheduler.load_state_dict(trainer["scheduler"])  # type: ignore[arg-type]
            self.step_index = int(trainer["step"])  # type: ignore[call-overload]
            self.skipped_steps = int(trainer["skipped_steps"])  # type: ignore[call-overload]
            set_rng_state(trainer["rng"])  # type: ignore[arg-type]
            self.resumed_from = self.step_index
            if self.dist.is_main:
                self._trim_history()
        else:
            self._fit_statistics()  # every process fits the same statistics (same crops); DDP syncs them anyway
            torch.manual_seed(self.config.seed)
        self.net = self.dist.wrap(self.model, self.device)

    def _trim_history(self) -> None:
        """Drop history lines of steps after the checkpoint (a killed run logged them; they rerun now)."""
        path = self.out / "history.jsonl"
        if path.is_file():
            write_jsonl(path, [row for row in read_jsonl(path, strict=False) if row.get("step", 0) <= self.step_index])

    def _fit_statistics(self) -> None:
        """Per-bin log-mel mean/std over a corpus sample (BEST-RQ needs standardised inputs; the encoder
        uses the same statistics), and the k-means codebook for ``--targets kmeans``."""
        backbone = self.model.backbone
        frames_of = backbone.frames
        sample = CropDataset(self.files, sample_rate=backbone.sample_rate, crop_s=self.config.crop_s,
                             seed=self.config.seed + 1_000_003, token_hop=backbone.token_hop,
                             tokens_per_crop=self.tokens_per_crop, cqt=False)
        crops = [sample[i] for i in range(self.config.stats_crops)]
        waves = torch.stack([c[0] for c in crops]).to(self.device)
        lengths = torch.tensor([c[1] for c in crops], device=self.device)
        with torch.no_grad():
            mel = frames_of.log_mel(waves)  # standardised with the initial zeros/ones: the raw log-mel
            frames = mel.shape[1]
            valid = torch.arange(frames, device=self.device)[None] < (1 + lengths // frames_of.config.hop)[:, None]
            values = mel[valid]
            frames_of.mel_mean.copy_(values.mean(dim=0))
            frames_of.mel_std.copy_(values.std(dim=0).clamp(min=1e-3))
            if isinstance(self.model.quantizer, KMeansQuantizer):
                features, tokens = kmeans_features(frames_of, waves, lengths)
                keep = torch.arange(features.shape[1], device=self.device)[None] < tokens[:, None]
                self.model.quantizer.fit(features[keep].cpu().numpy(), seed=self.config.seed)

    # -- one step -----------------------------------------------------------------------------------
    def _targets(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes ``(batch, tokens, codebooks)`` of the clean audio and each item's valid tokens."""
        frames = self.model.backbone.frames
        with torch.no_grad():
            if isinstance(self.model.quantizer, KMeansQuantizer):
                features, valid = kmeans_features(frames, waves, lengths)
            elif isinstance(self.model.quantizer, CodecQuantizer):
                features, valid = waves, frames.tokens(waves, lengths)[1]
            else:
                features, valid = frames.tokens(waves, lengths)
            return self.model.quantizer(features), valid

    def _whole_batch(self, *parts: torch.Tensor) -> list[torch.Tensor]:
        """Each of ``parts`` (this process's rows ``rank::world`` of a micro-batch) as the whole micro-batch,
        rows in their single-process order."""
        if not self.dist.active:
            return list(parts)
        whole = []
        for part in parts:
            gathered = [torch.empty_like(part) for _ in range(self.dist.world_size)]
            torch.distributed.all_gather(gathered, part.contiguous())
            stacked = torch.stack(gathered, dim=1)  # (rows per process, processes, ...): row k of rank r is k*world+r
            whole.append(stacked.reshape(-1, *part.shape[1:]))
        return whole

    def _micro_batch(self, batch_number: int, waves, lengths, cqt, distill, present) -> tuple[torch.Tensor, dict[str, float]]:
        config, backbone = self.config, self.model.backbone
        waves, lengths, cqt = waves.to(self.device), lengths.to(self.device), cqt.to(self.device)
        distill, present = distill.to(self.device), present.to(self.device)
        codes, valid = self._targets(waves, lengths)
        all_waves, all_lengths, all_valid = self._whole_batch(waves, lengths, valid)
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + batch_number)
        mask = span_mask(all_valid.cpu(), codes.shape[1], prob=config.mask_prob, span=config.mask_span,
                         generator=generator).to(self.device)
        mixed, _ = mix_in_batch(all_waves, all_lengths, sample_rate=backbone.sample_rate, prob=config.mix_prob,
                                generator=generator)
        mine = self.dist.share(len(all_waves))
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            loss, metrics = self.net(mixed[mine], lengths, mask[mine], codes, cqt, cqt_weight=config.cqt_weight,
                                     distill=distill, present=present)
        return loss / config.accumulate, metrics

    def _agree(self, loss: torch.Tensor, masked_tokens: float) -> tuple[bool, torch.Tensor, float]:
        """Whether every process's loss is finite; this process's loss weighted so that DDP's average of
        gradients is the whole micro-batch's; and its share of the micro-batch's masked tokens."""
        finite = bool(torch.isfinite(loss))
        if not self.dist.active:
            return finite, loss, 1.0
        counts = torch.tensor([masked_tokens, 0.0 if finite else 1.0], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(counts)
        total, bad = float(counts[0]), float(counts[1])
        share = masked_tokens / total if total > 0 else 0.0
        return bad == 0, loss * (self.dist.world_size * share), share

    def _sum_over_processes(self, totals: dict[str, float]) -> dict[str, float]:
        """The step's metrics of the whole batch from each process's token-weighted parts (exact for the
        means; a process's code perplexity is weighted the same way, an approximation of the batch's)."""
        if not self.dist.active:
            return totals
        codebooks = range(self.model.quantizer.codebooks)
        keys = ["masked_tokens", "ce", *(f"{m}{c}" for c in codebooks for m in ("acc", "ppl"))]
        keys += ["cqt_mse"] if self.config.cqt_weight > 0 else []
        keys += [f"distill_{name}" for name in self.config.teachers]
        values = torch.tensor([totals.get(k, 0.0) for k in keys], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(values)
        return dict(zip(keys, values.tolist()))

    def step(self, micro_batches) -> dict[str, float]:
        """One optimizer step over ``accumulate`` micro-batches; a non-finite loss or gradient skips it."""
        config = self.config
        self.model.train()
        self.model.quantizer.eval()
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        finite = True
        for index, (batch_number, (waves, lengths, cqt, distill, present)) in enumerate(micro_batches):
            # under DDP, gradients are averaged over processes once, on the last micro-batch
            deferred = self.dist.active and index < config.accumulate - 1
            with self.net.no_sync() if deferred else contextlib.nullcontext():  # type: ignore[operator]
                loss, metrics = self._micro_batch(batch_number, waves, lengths, cqt, distill, present)
                finite, loss, share = self._agree(loss, metrics.get("masked_tokens", 0.0))
                if not finite:
                    break
                loss.backward()
            for k, v in metrics.items():  # counts add up over processes, means are weighted by their share
                totals[k] = totals.get(k, 0.0) + v * (1.0 if k == "masked_tokens" else share) / config.accumulate
        if clipped_step(self.optimizer, self.scheduler, self.model.parameters(), grad_clip=config.grad_clip,
                        finite=finite):
            self.bad_steps = 0
        else:
            self.skipped_steps += 1
            self.bad_steps += 1
            if self.bad_steps >= config.max_bad_steps:
                raise TrainingError(f"{self.bad_steps} steps in a row had a non-finite loss or gradient (step "
                                    f"{self.step_index}, learning rate {self.scheduler.get_last_lr()[0]:.3g}); "
                                    "lower --lr or check the corpus for broken audio.")
        self.optimizer.zero_grad(set_to_none=True)
        self.step_index += 1
        return self._sum_over_processes(totals)

    # -- saving -------------------------------------------------------------------------------------
    def checkpoint(self) -> Path:
        """The resume state, then an encoder folder for this step (returned); written by process 0 alone."""
        folder = self.out / "checkpoints" / f"step-{self.step_index:07d}"
        if not self.dist.is_main:
            return folder
        save_checkpoint(self.out / "state", step=self.step_index,
                        tensors={k: v for k, v in self.model.state_dict().items()},
                        trainer={"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                                 "step": self.step_index, "skipped_steps": self.skipped_steps, "rng": rng_state()})
        return self.save_encoder(folder)

    def save_encoder(self, folder: Path) -> Path:
        config = self.config
        description = (f"mirkit {config.arch}/{config.preset if config.init is None else config.init} pretrained {self.step_index} steps with {config.targets} "
                       f"targets" + (f" + CQT (weight {config.cqt_weight:g})" if config.cqt_weight else "")
                       + (f", in-batch mixing {config.mix_prob:g}" if config.mix_prob else "")
                       + (f", distilled from {config.distill}" if config.distill else ""))
        return self.model.backbone.save(folder, name=f"{self.out.name}/{folder.name}",
                                        source=f"mirkit pretrain, run {self.out}", licence=LICENCE,
                                        description=description,
                                        extra={"pretrain": {**config.to_dict(), "step": self.step_index}})


__all__ = ["LICENCE", "Pretrainer", "build_model"]
