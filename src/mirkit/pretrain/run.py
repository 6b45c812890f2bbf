"""``pretrain``: one resumable masked-prediction run, from a corpus folder to an encoder folder (the
model and its steps: :mod:`mirkit.pretrain.trainer`).

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

Under ``torchrun --nproc-per-node N`` (DistributedDataParallel; gloo on CPUs, NCCL on GPUs) each
process loads and encodes every N-th crop of each micro-batch; the clean crops are gathered so that
masks and in-batch mixing are drawn over the whole micro-batch exactly as one process draws them,
and each process's loss is weighted by its share of the masked tokens, so the averaged gradient is
the whole batch's. With ``--dropout 0`` the job therefore trains what one process trains, up to
floating-point summation order (tested with two CPU processes); with dropout, the dropout draws
differ. Process 0 alone writes ``run.json``, the history and every checkpoint; the resume state
does not depend on the number of processes, so a run may resume under another one.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mirkit.errors import CheckpointError, ConfigError
from mirkit.files import append_jsonl, atomic_write_json, sha256_file
from mirkit.pretrain.config import PretrainConfig
from mirkit.pretrain.data import MANIFEST, StreamSampler, read_corpus
from mirkit.pretrain.trainer import LICENCE, Pretrainer, build_model
from mirkit.train.distributed import context, device_for

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


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
    processes: int = 1  # torchrun processes that trained it together

    def summary(self) -> str:
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in self.last.items() if k not in ("masked_tokens", "input_wait_share"))
        resumed = f" (resumed at step {self.resumed_from_step})" if self.resumed_from_step is not None else ""
        together = f" by {self.processes} processes" if self.processes > 1 else ""
        return (f"Pretrained {self.steps} steps{resumed}{together} in {self.wall_s:.0f} s, {self.audio_s_per_s:.1f} audio-s/s "
                f"({100 * self.input_wait_share:.0f} % of it waiting for input); "
                f"last step: {metrics}. Encoder: {self.out_dir}/final (use --encoder {self.out_dir}/final).")


def pretrain(*, corpus: str | Path, out_dir: str | Path, config: PretrainConfig, device: str = "cpu",
             resume: str = "auto", workers: int | None = None, progress: bool = True,
             stop_after_steps: int | None = None, eval_task: str | Path | None = None) -> PretrainReport | None:
    """Train on ``corpus`` into ``out_dir`` (see the module docstring); ``None`` when ``stop_after_steps``
    ended the run early (how tests stand in for a killed process).

    ``eval_task``: a suite task folder; at every checkpoint a linear probe (one seed) is trained on the
    checkpoint's layers and the best layer's *validation* score goes to ``RUN/eval.jsonl`` and the
    console (the test split is never shown while training).

    Under ``torchrun`` every process calls this (see the module docstring); process 0 writes.
    """
    from tqdm.auto import tqdm

    config.validate()
    if resume not in ("auto", "never"):
        raise ConfigError(f"resume={resume!r} must be 'auto' (continue from the last checkpoint) or 'never'.")
    out = Path(out_dir)
    files = read_corpus(corpus)
    dist = context(device)
    device = device_for(device, dist)
    if dist.is_main:
        _claim(out, config, corpus=Path(corpus), resume=resume)
    dist.barrier()  # the others read the state only once run.json is settled
    workers = workers if workers is not None else min(2, max(0, (torch.get_num_threads() or 1) - 1))
    teachers = _teachers(config, files, corpus=Path(corpus), progress=progress and dist.is_main, dist=dist)
    trainer = Pretrainer(config, files, out, device=device, workers=workers, progress=progress, dist=dist,
                         teachers=teachers)
    trainer.start(resume=resume == "auto")
    batch = config.batch_size
    first = trainer.step_index * config.accumulate
    loader = torch.utils.data.DataLoader(
        trainer.dataset, batch_size=batch // dist.world_size, num_workers=workers, generator=torch.Generator(),
        sampler=StreamSampler(first * batch, config.steps * config.accumulate * batch, batch_size=batch,
                              rank=dist.rank, world_size=dist.world_size),
        prefetch_factor=4 if workers else None)
    started, audio_s, wait_s, last = time.perf_counter(), 0.0, 0.0, {}
    micro = iter(enumerate(loader, start=first))
    with tqdm(total=config.steps, initial=trainer.step_index, desc="pretrain", unit="step",
              disable=not (progress and dist.is_main) or None) as bar:
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
            if dist.is_main:
                append_jsonl(out / "history.jsonl", {"step": trainer.step_index, **last})
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in last.items() if k.startswith(("ce", "acc", "ppl", "cqt"))})
            if trainer.step_index % config.checkpoint_every == 0 or trainer.step_index == config.steps:
                folder = trainer.checkpoint()
                if eval_task is not None and dist.is_main:
                    record = probe_checkpoint(folder, Path(eval_task), out, step=trainer.step_index)
                    bar.write(f"step {record['step']}: {record['task']} validation {record['valid_headline']:.3f} "
                              f"({record['layer']})")
            if stop_after_steps is not None and trainer.step_index >= stop_after_steps:
                return None
    if dist.is_main:
        trainer.save_encoder(out / "final")
    dist.barrier()  # nobody reports the run done before its encoder is written
    wall_s = time.perf_counter() - started
    return PretrainReport(out_dir=str(out), steps=trainer.step_index, resumed_from_step=trainer.resumed_from,
                          skipped_steps=trainer.skipped_steps, wall_s=wall_s,
                          audio_s_per_s=audio_s / max(wall_s, 1e-9), last=last,
                          input_wait_share=wait_s / max(wall_s, 1e-9), processes=dist.world_size)


def _teachers(config: PretrainConfig, files, *, corpus: Path, progress: bool, dist):
    """The ``--distill`` teachers' outputs for every corpus file (extracted once into the teacher store by
    process 0; the others then find them there), with the ``mse`` teachers' statistics fitted."""
    if not config.distill:
        return None
    from mirkit.pretrain.distill import TeacherTargets, cache_teachers, teacher_store

    store = teacher_store(corpus, config.teacher_store)
    paths = [f.path for f in files]
    names = list(config.teachers)
    sources = None
    if dist.is_main:
        log.info("distillation targets of %s for %d corpus files (computed once, in %s)", ", ".join(names), len(paths), store)
        sources = cache_teachers(paths, names=names, store=store, progress=progress)
    dist.barrier()
    if sources is None:  # the other processes: everything is stored now, so this only reads the hash cache
        sources = cache_teachers(paths, names=names, store=store, progress=False)
    targets = TeacherTargets(names, sources, store)
    targets.fit_statistics(paths[:: max(1, len(paths) // 64)])  # the same files in every process and on resume
    return targets


def probe_checkpoint(folder: Path, task_dir: Path, out: Path, *, step: int) -> dict[str, object]:
    """A one-seed linear probe of every layer of the encoder in ``folder`` on ``task_dir``; records the
    layer with the best validation score and that score (``RUN/eval.jsonl``)."""
    from mirkit.adapt.config import ProbeRunConfig
    from mirkit.adapt.results import validated_layer
    from mirkit.adapt.run import probe_task

    summary = probe_task(ProbeRunConfig(task_dir=task_dir, encoder=str(folder), out_dir=out / "eval" / folder.name,
                                        store=out / "eval" / "features", seeds=1, progress=False))
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
        # settings added to mirkit after the run was written compare as their defaults
        old["config"] = PretrainConfig.from_dict(old.get("config", {})).to_dict()
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


__all__ = ["LICENCE", "PretrainConfig", "PretrainReport", "build_model", "pretrain"]
