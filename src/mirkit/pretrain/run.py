"""``pretrain``: one resumable masked-prediction run, from a corpus folder to an encoder folder.

Layout of ``RUN``::

    run.json                      the config, the architecture and the corpus (a rerun must match)
    state/                        the latest resume checkpoint (every weight, optimizer, scheduler, step, RNG)
    checkpoints/step-<N>/         an encoder folder every ``checkpoint_every`` steps
    final/                        the encoder folder at the end (``--encoder RUN/final`` anywhere)
    history.jsonl                 one line per step: loss, masked accuracy and code perplexity per codebook,
                                  CQT error, learning rate, audio-seconds per second

Bit for bit: crops are a function of (seed, position), masks and mixing of (seed, batch), and the
checkpoint holds every RNG state, so a run killed and resumed ends with the same weights as one
that was not (tested on CPU).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mirkit.encoders.mel_transformer import PACKED_ATTENTION
from mirkit.errors import CheckpointError, ConfigError, TrainingError
from mirkit.files import append_jsonl, atomic_write_json, read_jsonl, sha256_file, write_jsonl
from mirkit.pretrain.backbones import build_backbone
from mirkit.pretrain.config import PretrainConfig
from mirkit.pretrain.data import MANIFEST, CorpusFile, CropDataset, StreamSampler, read_corpus
from mirkit.pretrain.masking import span_mask
from mirkit.pretrain.mixing import mix_in_batch
from mirkit.pretrain.objective import MaskedPredictionModel
from mirkit.pretrain.quantizers import CodecQuantizer, KMeansQuantizer, RandomProjectionQuantizer
from mirkit.pretrain.teachers import check_cqt_hop, kmeans_features
from mirkit.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from mirkit.train.optim import clipped_step, warmup_cosine

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
LICENCE = "Apache-2.0 (weights trained by mirkit; see the corpus manifest for the audio's licences)"


@dataclass
class PretrainReport:
    out_dir: str
    steps: int
    resumed_from_step: int | None
    skipped_steps: int
    wall_s: float
    audio_s_per_s: float
    last: dict[str, float]
    input_wait_share: float = 0.0  # of the wall time, waiting for the data loader (target on a GPU: < 5 %)

    def summary(self) -> str:
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in self.last.items() if k not in ("masked_tokens", "input_wait_share"))
        resumed = f" (resumed at step {self.resumed_from_step})" if self.resumed_from_step is not None else ""
        return (f"Pretrained {self.steps} steps{resumed} in {self.wall_s:.0f} s, {self.audio_s_per_s:.1f} audio-s/s "
                f"({100 * self.input_wait_share:.0f} % of it waiting for input); "
                f"last step: {metrics}. Encoder: {self.out_dir}/final (use --encoder {self.out_dir}/final).")


def build_model(config: PretrainConfig) -> MaskedPredictionModel:
    """The backbone (random weights from ``seed``, or ``--init``'s), the quantizer and the heads, before any
    statistics are fitted."""
    torch.manual_seed(config.seed)
    backbone = build_backbone(config.arch, config.preset, init=config.init, weights=config.weights)
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
    return MaskedPredictionModel(backbone, quantizer)


class Pretrainer:
    """A run with explicit state and named steps: ``start`` (restore, or fit statistics), ``step``
    (micro-batches -> one optimizer step), ``checkpoint``, ``finish``."""

    def __init__(self, config: PretrainConfig, files: list[CorpusFile], out: Path, *, device: str = "cpu",
                 workers: int = 2, progress: bool = True) -> None:
        config.validate()
        self.config, self.files, self.out, self.progress = config, files, out, progress
        self.device = torch.device(device)
        self.model = build_model(config).to(self.device)
        backbone = self.model.backbone
        self.tokens_per_crop = int(backbone.frames.config.token_lengths(int(round(config.crop_s * backbone.sample_rate))))
        self.dataset = CropDataset(files, sample_rate=backbone.sample_rate, crop_s=config.crop_s, seed=config.seed,
                                   token_hop=backbone.token_hop, tokens_per_crop=self.tokens_per_crop,
                                   cqt=config.cqt_weight > 0)
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
            self._trim_history()
            return
        self._fit_statistics()
        torch.manual_seed(self.config.seed)

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

    def _micro_batch(self, batch_number: int, waves, lengths, cqt) -> tuple[torch.Tensor, dict[str, float]]:
        config, backbone = self.config, self.model.backbone
        waves, lengths, cqt = waves.to(self.device), lengths.to(self.device), cqt.to(self.device)
        codes, valid = self._targets(waves, lengths)
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + batch_number)
        mask = span_mask(valid.cpu(), codes.shape[1], prob=config.mask_prob, span=config.mask_span,
                         generator=generator).to(self.device)
        mixed, _ = mix_in_batch(waves, lengths, sample_rate=backbone.sample_rate, prob=config.mix_prob,
                                generator=generator)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            loss, metrics = self.model(mixed, lengths, mask, codes, cqt, cqt_weight=config.cqt_weight)
        return loss / config.accumulate, metrics

    def step(self, micro_batches) -> dict[str, float]:
        """One optimizer step over ``accumulate`` micro-batches; a non-finite loss or gradient skips it."""
        config = self.config
        self.model.train()
        self.model.quantizer.eval()
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        finite = True
        for batch_number, (waves, lengths, cqt) in micro_batches:
            loss, metrics = self._micro_batch(batch_number, waves, lengths, cqt)
            if not torch.isfinite(loss):
                finite = False
                break
            loss.backward()
            for k, v in metrics.items():
                totals[k] = totals.get(k, 0.0) + v / config.accumulate
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
        return totals

    # -- saving -------------------------------------------------------------------------------------
    def checkpoint(self) -> Path:
        """The resume state, then an encoder folder for this step (returned)."""
        save_checkpoint(self.out / "state", step=self.step_index,
                        tensors={k: v for k, v in self.model.state_dict().items()},
                        trainer={"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                                 "step": self.step_index, "skipped_steps": self.skipped_steps, "rng": rng_state()})
        return self.save_encoder(self.out / "checkpoints" / f"step-{self.step_index:07d}")

    def save_encoder(self, folder: Path) -> Path:
        config = self.config
        description = (f"mirkit {config.arch}/{config.preset if config.init is None else config.init} pretrained {self.step_index} steps with {config.targets} "
                       f"targets" + (f" + CQT (weight {config.cqt_weight:g})" if config.cqt_weight else "")
                       + (f", in-batch mixing {config.mix_prob:g}" if config.mix_prob else ""))
        return self.model.backbone.save(folder, name=f"{self.out.name}/{folder.name}",
                                        source=f"mirkit pretrain, run {self.out}", licence=LICENCE,
                                        description=description,
                                        extra={"pretrain": {**config.to_dict(), "step": self.step_index}})


def pretrain(*, corpus: str | Path, out_dir: str | Path, config: PretrainConfig, device: str = "cpu",
             resume: str = "auto", workers: int | None = None, progress: bool = True,
             stop_after_steps: int | None = None, eval_task: str | Path | None = None) -> PretrainReport | None:
    """Train on ``corpus`` into ``out_dir`` (see the module docstring); ``None`` when ``stop_after_steps``
    ended the run early (how tests stand in for a killed process).

    ``eval_task``: a suite task folder; at every checkpoint a linear probe (one seed) is trained on the
    checkpoint's layers and the best layer's *validation* score goes to ``RUN/eval.jsonl`` and the
    console (the test split is never shown while training).
    """
    from tqdm.auto import tqdm

    config.validate()
    if resume not in ("auto", "never"):
        raise ConfigError(f"resume={resume!r} must be 'auto' (continue from the last checkpoint) or 'never'.")
    out = Path(out_dir)
    files = read_corpus(corpus)
    _claim(out, config, corpus=Path(corpus), resume=resume)
    workers = workers if workers is not None else min(2, max(0, (torch.get_num_threads() or 1) - 1))
    trainer = Pretrainer(config, files, out, device=device, workers=workers, progress=progress)
    trainer.start(resume=resume == "auto")
    batch = config.batch_size
    first = trainer.step_index * config.accumulate
    loader = torch.utils.data.DataLoader(
        trainer.dataset, batch_size=batch, num_workers=workers, generator=torch.Generator(),
        sampler=StreamSampler(first * batch, config.steps * config.accumulate * batch),
        prefetch_factor=4 if workers else None)
    started, audio_s, wait_s, last = time.perf_counter(), 0.0, 0.0, {}
    micro = iter(enumerate(loader, start=first))
    with tqdm(total=config.steps, initial=trainer.step_index, desc="pretrain", unit="step",
              disable=not progress or None) as bar:
        while trainer.step_index < config.steps:
            step_start = time.perf_counter()
            batches = [next(micro) for _ in range(config.accumulate)]
            waited = time.perf_counter() - step_start  # the model idles while it waits for input
            last = trainer.step(batches)
            elapsed = time.perf_counter() - step_start
            audio_s += config.accumulate * batch * config.crop_s
            wait_s += waited
            last["lr"] = float(trainer.scheduler.get_last_lr()[0])
            last["audio_s_per_s"] = config.accumulate * batch * config.crop_s / max(elapsed, 1e-9)
            last["input_wait_share"] = waited / max(elapsed, 1e-9)
            append_jsonl(out / "history.jsonl", {"step": trainer.step_index, **last})
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in last.items() if k.startswith(("ce", "acc", "ppl", "cqt"))})
            if trainer.step_index % config.checkpoint_every == 0 or trainer.step_index == config.steps:
                folder = trainer.checkpoint()
                if eval_task is not None:
                    record = probe_checkpoint(folder, Path(eval_task), out, step=trainer.step_index)
                    bar.write(f"step {record['step']}: {record['task']} validation {record['valid_headline']:.3f} "
                              f"({record['layer']})")
            if stop_after_steps is not None and trainer.step_index >= stop_after_steps:
                return None
    trainer.save_encoder(out / "final")
    wall_s = time.perf_counter() - started
    return PretrainReport(out_dir=str(out), steps=trainer.step_index, resumed_from_step=trainer.resumed_from,
                          skipped_steps=trainer.skipped_steps, wall_s=wall_s,
                          audio_s_per_s=audio_s / max(wall_s, 1e-9), last=last,
                          input_wait_share=wait_s / max(wall_s, 1e-9))


def probe_checkpoint(folder: Path, task_dir: Path, out: Path, *, step: int) -> dict[str, object]:
    """A one-seed linear probe of every layer of the encoder in ``folder`` on ``task_dir``; records the
    layer with the best validation score and that score (``RUN/eval.jsonl``)."""
    from mirkit.adapt.run import probe_task, validated_layer

    summary = probe_task(task_dir=task_dir, encoder=str(folder), out_dir=out / "eval" / folder.name,
                         store=out / "eval" / "features", seeds=1, progress=False)
    layer, stats = validated_layer(summary)
    record = {"step": step, "task": task_dir.name, "layer": layer, "valid_headline": stats["valid_headline"]}
    append_jsonl(out / "eval.jsonl", record)
    return record


def _saved_step(out: Path) -> int:
    """The step of the run's resume checkpoint (0 when there is none)."""
    pointer = out / "state" / "checkpoint.json"
    try:
        return int(json.loads(pointer.read_text())["step"])
    except (OSError, ValueError, KeyError):
        return 0


def _claim(out: Path, config: PretrainConfig, *, corpus: Path, resume: str) -> None:
    """Write ``run.json``; refuse to continue a run made with other settings or another corpus. Only
    ``steps`` may change on resume (a longer or shorter schedule, still past the saved step): the
    cosine decay is recomputed for the new length from there on, and ``run.json`` records each change
    under ``schedule_changes``."""
    info = {"format_version": FORMAT_VERSION, "config": config.to_dict(),
            "architecture": {"arch": config.arch, "preset": config.preset, "init": config.init},
            "corpus": str(corpus.resolve()), "corpus_manifest_sha256": sha256_file(corpus / MANIFEST),
            "schedule_changes": []}
    path = out / "run.json"
    if resume == "never":  # start over: nothing of an earlier run may mix with this one
        for name in ("state", "checkpoints", "final"):
            shutil.rmtree(out / name, ignore_errors=True)
        (out / "history.jsonl").unlink(missing_ok=True)
    elif path.is_file():
        old = json.loads(path.read_text())
        info["schedule_changes"] = old.get("schedule_changes", [])
        differ = [k for k in ("config", "architecture", "corpus_manifest_sha256") if old.get(k) != info[k]]
        changed = sorted(k for k in info["config"] if old.get("config", {}).get(k) != info["config"][k])
        if differ == ["config"] and changed == ["steps"]:
            step = _saved_step(out)
            if config.steps <= step:
                raise CheckpointError(f"--steps {config.steps} is not past the saved step {step} of {out}; give more "
                                      "steps, or --resume never to start over.")
            info["schedule_changes"].append({"at_step": step, "from_steps": old["config"]["steps"],
                                             "to_steps": config.steps})
            log.warning("%s: schedule length changed from %s to %s steps at step %s (recorded in run.json)", out,
                        old["config"]["steps"], config.steps, step)
        elif differ:
            raise CheckpointError(f"{out} holds a pretraining run with another {', '.join(differ)}"
                                  + (f" ({', '.join(changed)} differ)" if changed else "")
                                  + "; rerun with the same settings and corpus (only --steps may change), use "
                                  "another --out, or --resume never to start over.")
    atomic_write_json(path, info)


__all__ = ["PretrainConfig", "PretrainReport", "build_model", "pretrain"]
