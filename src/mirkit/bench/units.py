"""The units of work of a bench: one encoder's probe sweep on one task, or a task's peers. Each
returns an :class:`Outcome` (jobs trained and reused, failures, peers, the progress lines) instead
of printing, so units can run in worker processes (``mirkit bench --jobs N``) and the parent applies
outcomes in the order they finish. A failing unit is recorded under ``RUNS/failures/`` and the bench
goes on."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path

from mirkit.adapt.config import FrameProbeConfig, ProbeConfig, ProbeRunConfig
from mirkit.adapt.results import validated_layer
from mirkit.adapt.run import probe_task
from mirkit.bench.config import TIMED_FRAME_RATE_HZ, BenchConfig
from mirkit.bench.peers import run_peer
from mirkit.data.task_folder import load_task
from mirkit.encoders.zoo import get_spec
from mirkit.files import atomic_write_json, safe_stem
from mirkit.kinds import peers_of_kind
from mirkit.kinds.peers import RENAMED


@dataclass
class Outcome:
    pairs: int = 0
    trained: int = 0
    reused: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    peers_run: list[str] = field(default_factory=list)
    peers_missing: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def record_failure(out: Path, task: str, name: str, exc: BaseException) -> dict[str, str]:
    record = {"task": task, "name": name, "error": f"{type(exc).__name__}: {exc}",
              "traceback": "".join(traceback.format_exception(exc))[-4000:]}
    atomic_write_json(out / "failures" / f"{task}__{safe_stem(name)}.json", record)
    return record


def pair_config(config: BenchConfig, task: str, encoder: str) -> ProbeRunConfig:
    """The probe run of one encoder on one task of the bench: clip-level heads with ``seeds``, or frame-level
    ones with ``frame_seeds`` and ``frame_model`` (and the frame rate of a free-hop encoder) when the
    task's kind is frame-level."""
    spec = get_spec(encoder)
    task_dir = Path(config.suite_dir) / task
    common = dict(task_dir=task_dir, encoder=encoder, out_dir=Path(config.out_dir) / "tasks" / task / safe_stem(encoder),
                  store=config.store, layers=config.layers, weighted=config.weighted, weights_dir=config.weights_dir,
                  device=config.device, loudness=config.loudness, force=config.force, progress=config.progress)
    if load_task(task_dir).kind.frame_level:
        return ProbeRunConfig(**common, seeds=config.seeds_of_frames, model=config.frame_head,  # type: ignore[arg-type]
                              probe=FrameProbeConfig(head=config.frame_head),
                              frame_rate_hz=TIMED_FRAME_RATE_HZ if spec.adjustable_frame_rate else None)
    return ProbeRunConfig(**common, seeds=config.seeds, model=config.model, probe=ProbeConfig(model=config.model),  # type: ignore[arg-type]
                          frame_rate_hz=spec.clip_frame_rate_hz)


def run_pair(config: BenchConfig, task: str, encoder: str) -> Outcome:
    """One encoder's probe sweep on one task."""
    outcome = Outcome(pairs=1)
    out, name = Path(config.out_dir), safe_stem(encoder)
    try:
        summary = probe_task(pair_config(config, task, encoder))
    except Exception as exc:  # a failing pair is recorded; the rest of the bench goes on
        outcome.failures.append(record_failure(out, task, encoder, exc))
        return outcome
    (out / "failures" / f"{task}__{name}.json").unlink(missing_ok=True)
    outcome.trained, outcome.reused = summary["jobs"]["trained"], summary["jobs"]["reused"]  # type: ignore[index]
    layer, stats = validated_layer(summary)
    outcome.lines.append(f"  {task:<10} {encoder:<22} {layer} (chosen on valid {stats['valid_headline']:.3f}): "
                         f"test {stats['headline']['mean']:.3f}")
    return outcome


def run_peers(config: BenchConfig, task: str, peer_names: list[str]) -> Outcome:
    """Every requested, installed peer of the task's kind (finished ones are reused unless ``force``)."""
    outcome, out = Outcome(), Path(config.out_dir)
    folder = load_task(Path(config.suite_dir) / task)
    for spec in peers_of_kind(folder.kind.name):
        if spec.name not in peer_names:
            continue
        if spec.version() is None:
            outcome.peers_missing.append(spec.name)
            continue
        path = out / "peers" / f"{task}__{spec.name}.json"
        old = [out / "peers" / f"{task}__{name}.json" for name, new in RENAMED.items() if new == spec.name]
        if not config.force and (path.is_file() or any(p.is_file() for p in old)):  # done, maybe under an old name
            outcome.peers_run.append(spec.name)
            continue
        try:
            result = run_peer(spec, folder, progress=config.progress)
        except Exception as exc:
            outcome.failures.append(record_failure(out, task, spec.name, exc))
            continue
        atomic_write_json(path, result)
        (out / "failures" / f"{task}__{spec.name}.json").unlink(missing_ok=True)
        outcome.peers_run.append(spec.name)
        outcome.lines.append(f"  {task:<10} {'peer ' + spec.name:<22} {result['test']['headline']:.3f}")
    return outcome


def init_worker(threads: int, numba_cache_root: str) -> None:
    """Worker-process initialiser: ``threads`` compute threads for torch (OpenMP and BLAS read the
    thread-count variables the pool set), so that N workers share the cores instead of oversubscribing;
    and a numba cache of its own. librosa compiles its numba functions with ``cache=True`` into its
    package folder; two workers compiling the same function at once wrote a corrupt cache there
    (``pitch._pi_wrapper``, used by chroma_cqt), and every later process that loaded it crashed. numba
    is not imported yet when this runs, so the variable takes effect."""
    from mirkit.files import private_numba_cache

    private_numba_cache(numba_cache_root)
    import torch

    torch.set_num_threads(threads)


def unit_name(unit: tuple) -> str:
    """The encoder of a pair unit, ``peers`` for a task's peers (how failures are named)."""
    return str(unit[2]) if unit[0] == "pair" else "peers"


def run_unit(unit: tuple, config: BenchConfig, peer_names: list[str]) -> Outcome:
    """``("pair", task, encoder)`` or ``("peers", task)``; never raises (a failure is an outcome)."""
    try:
        if unit[0] == "pair":
            return run_pair(config, unit[1], unit[2])
        return run_peers(config, unit[1], peer_names)
    except Exception as exc:  # noqa: BLE001 - whatever escapes is recorded against the unit
        return Outcome(failures=[record_failure(Path(config.out_dir), unit[1], unit_name(unit), exc)])
