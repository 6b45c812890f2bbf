"""``run_bench``: encoders x tasks x layers x seeds probes on a built suite, plus the peers.

Layout of a bench folder (``RUNS``)::

    RUNS/bench.json                       the plan: suite, its checksum, encoders, tasks, seeds, probe
    RUNS/features/                        the feature store (unless --store is given)
    RUNS/tasks/<task>/<encoder>/          one probe run (results/<job>.json, models/<job>/,
                                          summary.json, extract.json); usable with `mirkit predict`
    RUNS/peers/<task>__<peer>.json        a peer's test-split result
    RUNS/failures/<task>__<name>.json     why a pair failed (removed once it succeeds)
    RUNS/provenance.json                  versions and machine of the last run

Finished jobs are skipped on rerun (``force`` redoes them); a failing pair is recorded and the run
goes on; the returned :class:`BenchReport` summarises it all.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from mirkit.adapt.config import FrameProbeConfig, ProbeConfig
from mirkit.bench.config import DEFAULT_ENCODERS, BenchConfig
from mirkit.bench.peers import default_peers
from mirkit.bench.units import Outcome, init_worker, record_failure, run_unit, unit_name
from mirkit.data.task_folder import load_task
from mirkit.data.tasks import TASKS
from mirkit.encoders.zoo import get_spec
from mirkit.errors import ConfigError
from mirkit.files import atomic_write_json, sha256_text
from mirkit.kinds import PEERS, current_name
from mirkit.provenance import provenance


@dataclass
class BenchReport:
    out_dir: str
    pairs: int = 0
    jobs_trained: int = 0
    jobs_reused: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    peers_run: list[str] = field(default_factory=list)
    peers_missing: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def summary(self) -> str:
        line = (f"Bench: {self.pairs} encoder x task pairs, {self.jobs_trained} probe jobs trained, "
                f"{self.jobs_reused} reused from earlier runs, {len(self.failures)} failed, in {self.wall_s:.1f} s.")
        if self.peers_run:
            line += f" Peers run: {', '.join(self.peers_run)}."
        if self.peers_missing:
            line += f" Peers not installed: {', '.join(self.peers_missing)}."
        for failure in self.failures:
            line += f"\n  FAILED {failure['task']} / {failure['name']}: {failure['error']}"
        return line + f"\nResults: {self.out_dir}  (next: mirkit report {self.out_dir})"


def suite_checksum(suite_dir: Path) -> str:
    """SHA-256 over the suite's per-task manifest checksums (from suite.json), those of the tasks a bench
    can probe (so adding a separation task to a suite keeps its bench folders valid)."""
    info = read_suite(suite_dir)
    probed = {task: digest for task, digest in info.get("manifest_sha256", {}).items()
              if task not in TASKS or TASKS.get(task).task_kind.level != "stems"}
    return sha256_text(json.dumps(probed, sort_keys=True))


def read_suite(suite_dir: Path) -> dict:
    path = suite_dir / "suite.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{suite_dir} is not a built suite ({path.name}: {exc}); build one with "
                          f"`mirkit data build --suite quick --out {suite_dir}`.") from None


def suite_tasks(suite_dir: Path) -> list[str]:
    """Task folders of a suite that the bench probes, in the order of the task registry: clip-level ones,
    then frame-level ones (beat, chords, transcription, onsets); stems (separation) are the booster's
    (``mirkit boost --model open-unmix``)."""
    present = {t: load_task(suite_dir / t).kind for t in TASKS if (suite_dir / t / "manifest.jsonl").is_file()}
    return [t for t, kind in present.items() if kind.clip_level] + [t for t, kind in present.items() if kind.frame_level]


def run_bench(config: BenchConfig) -> BenchReport:
    """Run every (task, encoder) probe sweep and every (task, peer) of ``config``; see the module docstring."""
    started = time.perf_counter()
    config.validate()
    suite_dir, out = Path(config.suite_dir), Path(config.out_dir)
    info = read_suite(suite_dir)
    tasks = _checked_tasks(suite_dir, config.tasks)
    encoders = list(config.encoders or DEFAULT_ENCODERS)
    for name in encoders:
        get_spec(name)
    peer_names = default_peers() if config.peers is None else [current_name(n) for n in config.peers]
    for name in peer_names:
        PEERS.get(name)
    ProbeConfig(model=config.model).validate()
    FrameProbeConfig(head=config.frame_head).validate()
    if config.real_tempo is not None:
        from mirkit.bench.real_tempo import check_folder

        check_folder(config.real_tempo)
    plan = {"suite_dir": str(suite_dir.resolve()), "suite": info.get("suite"), "suite_seed": info.get("seed"),
            "suite_checksum": suite_checksum(suite_dir), "soundfonts": info.get("soundfonts"),
            "encoders": encoders, "tasks": tasks, "seeds": config.seeds, "frame_seeds": config.seeds_of_frames,
            "layers": config.layers, "probe": config.model, "frame_probe": config.frame_head,
            "weighted": config.weighted, "peers": peer_names, "loudness": config.loudness}
    _check_plan(out / "bench.json", plan, force=config.force)
    atomic_write_json(out / "bench.json", plan)
    atomic_write_json(out / "provenance.json", provenance())
    report, progress = BenchReport(out_dir=str(out)), config.progress
    units = [u for task in tasks for u in [*(("pair", task, e) for e in encoders), ("peers", task)]]
    if config.jobs == 1:
        for unit in units:
            _apply(report, run_unit(unit, config, peer_names), progress=progress)
    else:
        _run_parallel(report, units, config.jobs, config=config, peer_names=peer_names)
    if config.real_tempo is not None:
        from mirkit.bench.real_tempo import evaluate_real_tempo

        for result in evaluate_real_tempo(bench_dir=out, folder=config.real_tempo, encoders=encoders,
                                          peer_names=peer_names, store=config.store, progress=progress):  # type: ignore[arg-type]
            if "error" in result:
                report.failures.append({"task": "real_tempo", "name": str(result["name"]), "error": str(result["error"])})
            elif progress:
                print(f"  {'real tempo':<10} {result['name']:<22} Acc1 {result['test']['acc1']:.3f} "
                      f"Acc2 {result['test']['acc2']:.3f}", flush=True)
    report.peers_run = sorted(set(report.peers_run))
    report.wall_s = time.perf_counter() - started
    atomic_write_json(out / "bench_last_run.json", {**report.__dict__})
    return report


def _apply(report: BenchReport, outcome: Outcome, *, progress: bool) -> None:
    report.pairs += outcome.pairs
    report.jobs_trained += outcome.trained
    report.jobs_reused += outcome.reused
    report.failures += outcome.failures
    report.peers_run += outcome.peers_run
    report.peers_missing += [p for p in outcome.peers_missing if p not in report.peers_missing]
    for line in outcome.lines if progress else []:
        print(line, flush=True)


def _run_parallel(report: BenchReport, units: list[tuple], jobs: int, *, config: BenchConfig, peer_names: list[str],
                  runner=run_unit) -> None:
    """``units`` on ``jobs`` worker processes (spawned: no threads inherited) with the cores split between
    them; outcomes are applied as they finish. Units of one encoder that share features wait on each
    other's items through the feature store's claims, so nothing is computed twice.

    A worker that dies (a crash in native code) breaks the pool: the units that had not finished go to
    a fresh pool (finished jobs inside them are reused from their result files); if that breaks too,
    the rest run one at a time, each in its own worker, and a unit whose worker dies then is recorded
    as a failure while the others go on."""
    progress, out = config.progress, Path(config.out_dir)
    quiet = replace(config, progress=False)  # workers' progress bars would interleave: the parent prints lines
    pending = list(units)
    for _ in range(2):
        pending = _pool_round(report, pending, jobs, runner, (quiet, peer_names), progress=progress)
        if not pending:
            return
        if progress:
            print(f"  a worker process died; {len(pending)} unit(s) go to fresh workers", flush=True)
    for unit in pending:  # isolated: a unit that still kills its worker is the one at fault
        if _pool_round(report, [unit], jobs, runner, (quiet, peer_names), progress=progress):
            error = RuntimeError("its worker process died (a crash in native code); rerun the bench to retry it, "
                                 "or run with --jobs 1")
            _apply(report, Outcome(pairs=int(unit[0] == "pair"),
                                   failures=[record_failure(out, unit[1], unit_name(unit), error)]), progress=progress)


def _pool_round(report: BenchReport, units: list[tuple], jobs: int, runner, args: tuple, *,
                progress: bool) -> list[tuple]:
    """Run ``units`` in one pool; returns those that did not finish because the pool broke."""
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    done: list[tuple] = []
    with _worker_pool(jobs) as pool:
        futures = {pool.submit(runner, unit, *args): unit for unit in units}
        try:
            for future in as_completed(futures):
                _apply(report, future.result(), progress=progress)
                done.append(futures[future])
        except BrokenProcessPool:
            for future, unit in futures.items():
                if unit not in done and future.done() and not future.cancelled() and future.exception() is None:
                    _apply(report, future.result(), progress=progress)
                    done.append(unit)
    return [unit for unit in units if unit not in done]


@contextmanager
def _worker_pool(jobs: int):
    """A spawned pool whose workers get ``cores / jobs`` threads each (the thread-count variables are set
    while the pool lives: workers start on demand and read them at import) and a private numba cache
    each, in a folder removed with the pool (see :func:`~mirkit.bench.units.init_worker`)."""
    import multiprocessing
    import os
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: threads for name in names})
    try:
        with tempfile.TemporaryDirectory(prefix="mirkit-numba-") as numba_root, ProcessPoolExecutor(
                max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker,
                initargs=(int(threads), numba_root)) as pool:
            yield pool
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _checked_tasks(suite_dir: Path, tasks: list[str] | None) -> list[str]:
    available = suite_tasks(suite_dir)
    tasks = list(tasks or available)
    for task in tasks:
        TASKS.get(task)  # unknown names fail with a suggestion
        if task not in available:
            raise ConfigError(f"task {task!r} is not a benchmarked task of suite {suite_dir} (it has: "
                              f"{', '.join(available) or 'none'}); drop it from --tasks or rebuild the suite.")
    return tasks


def _check_plan(path: Path, plan: dict, *, force: bool) -> None:
    """Results of another suite (or probe protocol) must not mix with these."""
    if not path.is_file() or force:
        return
    old = json.loads(path.read_text())
    # bench folders written before a setting existed hold its default then
    defaults = {"frame_seeds": plan["frame_seeds"], "frame_probe": old.get("probe"), "loudness": "none"}
    for key in ("suite_checksum", "seeds", "frame_seeds", "probe", "frame_probe", "layers", "loudness"):
        if old.get(key, defaults.get(key)) != plan[key]:
            raise ConfigError(f"{path.parent} holds results for {key}={old.get(key)!r}, but this run has "
                              f"{key}={plan[key]!r}; use another --out folder, or --force to redo every job.")
