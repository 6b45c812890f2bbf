"""The units of work of a bench: one encoder's probe sweep on one task, or a task's peers. Each
returns an :class:`Outcome` (jobs trained and reused, failures, peers, the progress lines) instead
of printing, so units can run in worker processes (``mirkit bench --jobs N``) and the parent applies
outcomes in the order they finish. A failing unit is recorded under ``RUNS/failures/`` and the bench
goes on."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path

from mirkit.adapt.run import probe_task, validated_layer
from mirkit.adapt.timed.fit import FrameProbeConfig
from mirkit.adapt.timed.run import FRAME_KINDS, probe_timed_task
from mirkit.bench.peers import peer_version, peers_for, run_peer
from mirkit.data.tasks import TASKS
from mirkit.encoders.zoo import get_spec
from mirkit.files import atomic_write_json, safe_stem

#: frame rate of encoders with a free hop (CREPE) on the frame-level tasks (clip-level tasks use the spec's)
TIMED_FRAME_RATE_HZ = 50.0


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


def run_pair(out: Path, suite_dir: Path, task: str, encoder: str, probe_args: dict[str, object]) -> Outcome:
    """One encoder's probe sweep on one task."""
    outcome = Outcome(pairs=1)
    name = safe_stem(encoder)
    try:
        spec = get_spec(encoder)
        if TASKS.get(task).kind in FRAME_KINDS:
            args = {k: v for k, v in probe_args.items() if k not in ("config", "frame_seeds", "frame_model")}
            args["seeds"] = probe_args["frame_seeds"]
            config = FrameProbeConfig(head=str(probe_args["frame_model"]))
            summary = probe_timed_task(task_dir=suite_dir / task, encoder=encoder, out_dir=out / "tasks" / task / name,
                                       config=config, frame_rate_hz=TIMED_FRAME_RATE_HZ if spec.adjustable_frame_rate
                                       else None, **args)  # type: ignore[arg-type]
        else:
            args = {k: v for k, v in probe_args.items() if k not in ("frame_seeds", "frame_model")}
            summary = probe_task(task_dir=suite_dir / task, encoder=encoder, out_dir=out / "tasks" / task / name,
                                 frame_rate_hz=spec.clip_frame_rate_hz, **args)  # type: ignore[arg-type]
    except Exception as exc:  # a failing pair is recorded; the rest of the bench goes on
        outcome.failures.append(record_failure(out, task, encoder, exc))
        return outcome
    (out / "failures" / f"{task}__{name}.json").unlink(missing_ok=True)
    outcome.trained, outcome.reused = summary["jobs"]["trained"], summary["jobs"]["reused"]  # type: ignore[index]
    layer, stats = validated_layer(summary)
    outcome.lines.append(f"  {task:<10} {encoder:<22} {layer} (chosen on valid {stats['valid_headline']:.3f}): "
                         f"test {stats['headline']['mean']:.3f}")
    return outcome


def run_peers(out: Path, suite_dir: Path, task: str, peer_names: list[str], *, force: bool,
              progress: bool) -> Outcome:
    """Every requested, installed peer of ``task`` (finished ones are reused unless ``force``)."""
    outcome = Outcome()
    for spec in peers_for(task):
        if spec.name not in peer_names:
            continue
        if peer_version(spec) is None:
            outcome.peers_missing.append(spec.name)
            continue
        path = out / "peers" / f"{task}__{spec.name}.json"
        if path.is_file() and not force:
            outcome.peers_run.append(spec.name)
            continue
        try:
            result = run_peer(spec, suite_dir / task, progress=progress)
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


def run_unit(unit: tuple, out: Path, suite_dir: Path, probe_args: dict[str, object], peer_names: list[str]) -> Outcome:
    """``("pair", task, encoder)`` or ``("peers", task)``; never raises (a failure is an outcome)."""
    try:
        if unit[0] == "pair":
            return run_pair(out, suite_dir, unit[1], unit[2], probe_args)
        return run_peers(out, suite_dir, unit[1], peer_names, force=bool(probe_args["force"]),
                         progress=bool(probe_args["progress"]))
    except Exception as exc:  # noqa: BLE001 - whatever escapes is recorded against the unit
        return Outcome(failures=[record_failure(out, unit[1], unit_name(unit), exc)])
