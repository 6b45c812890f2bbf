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
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from mirkit.adapt.probe import ProbeConfig
from mirkit.adapt.run import probe_task, validated_layer
from mirkit.adapt.timed.fit import FrameProbeConfig
from mirkit.adapt.timed.run import FRAME_KINDS, probe_timed_task
from mirkit.bench.defaults import DEFAULT_ENCODERS, DEFAULT_PEERS
from mirkit.bench.peers import PEERS, peer_version, peers_for, run_peer
from mirkit.data.tasks import TASKS
from mirkit.encoders.zoo import get_spec
from mirkit.errors import ConfigError
from mirkit.files import atomic_write_json, safe_stem, sha256_text
from mirkit.provenance import provenance

#: frame rate of encoders with a free hop (CREPE) on the frame-level tasks (clip-level tasks use the spec's)
TIMED_FRAME_RATE_HZ = 50.0


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
    """SHA-256 over the suite's per-task manifest checksums (from suite.json)."""
    info = read_suite(suite_dir)
    return sha256_text(json.dumps(info.get("manifest_sha256", {}), sort_keys=True))


def read_suite(suite_dir: Path) -> dict:
    path = suite_dir / "suite.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{suite_dir} is not a built suite ({path.name}: {exc}); build one with "
                          f"`mirkit data build --suite quick --out {suite_dir}`.") from None


def suite_tasks(suite_dir: Path) -> list[str]:
    """Task folders of a suite that the bench probes: clip-level ones, then the frame-level ones (beat,
    chords); transcription is not benchmarked yet."""
    present = [t for t in TASKS if (suite_dir / t / "manifest.jsonl").is_file()]
    return ([t for t in present if not TASKS.get(t).time_resolved]
            + [t for t in present if TASKS.get(t).kind in FRAME_KINDS])


def run_bench(*, suite_dir: str | Path, out_dir: str | Path, encoders: list[str] | None = None,
              tasks: list[str] | None = None, seeds: int = 3, frame_seeds: int | None = None, layers: str = "all",
              model: str = "linear", frame_model: str | None = None,
              weighted: bool = True, peers: list[str] | None = None, store: str | Path | None = None,
              weights_dir: str | None = None, device: str = "cpu", force: bool = False,
              real_tempo: str | Path | None = None, loudness: str = "none", progress: bool = True) -> BenchReport:
    """Run every (task, encoder) probe sweep and every (task, peer); see the module docstring.
    ``frame_seeds``: seeds of the frame-level tasks (default ``seeds``); ``frame_model``: their head
    (``linear``, ``mlp`` or ``tcn``, a small temporal network over the frozen frames; default ``model``).
    ``real_tempo``: a ``tempo_real``
    folder (``mirkit data music``) on which each encoder's beat probe and the tempo peers are scored
    (:mod:`mirkit.bench.real_tempo`). ``loudness``: the level policy of every encoder's features
    (``none``, ``peak`` or ``lufs``; :mod:`mirkit.audio.loudness`)."""
    started = time.perf_counter()
    suite_dir, out = Path(suite_dir), Path(out_dir)
    info = read_suite(suite_dir)
    tasks = _checked_tasks(suite_dir, tasks)
    encoders = list(encoders or DEFAULT_ENCODERS)
    for name in encoders:
        get_spec(name)
    peer_names = list(DEFAULT_PEERS if peers is None else peers)
    for name in peer_names:
        PEERS.get(name)
    config = ProbeConfig(model=model)
    config.validate()
    frame_model = frame_model or model
    FrameProbeConfig(head=frame_model).validate()
    if real_tempo is not None:
        from mirkit.bench.real_tempo import check_folder

        check_folder(real_tempo)
    plan = {"suite_dir": str(suite_dir.resolve()), "suite": info.get("suite"), "suite_seed": info.get("seed"),
            "suite_checksum": suite_checksum(suite_dir), "soundfonts": info.get("soundfonts"),
            "encoders": encoders, "tasks": tasks, "seeds": seeds,
            "frame_seeds": seeds if frame_seeds is None else frame_seeds, "layers": layers, "probe": model,
            "frame_probe": frame_model, "weighted": weighted, "peers": peer_names, "loudness": loudness}
    _check_plan(out / "bench.json", plan, force=force)
    atomic_write_json(out / "bench.json", plan)
    atomic_write_json(out / "provenance.json", provenance())
    report = BenchReport(out_dir=str(out))
    probe_args = dict(store=Path(store) if store else out / "features", layers=layers, seeds=seeds,
                      frame_seeds=plan["frame_seeds"], config=config, frame_model=frame_model,
                      weights_dir=weights_dir, device=device, weighted=weighted, force=force, loudness=loudness,
                      progress=progress)
    for task in tasks:
        for encoder in encoders:
            _run_pair(report, out, suite_dir, task, encoder, probe_args)
        _run_peers(report, out, suite_dir, task, peer_names, force=force, progress=progress)
    if real_tempo is not None:
        from mirkit.bench.real_tempo import evaluate_real_tempo

        for result in evaluate_real_tempo(bench_dir=out, folder=real_tempo, encoders=encoders, peer_names=peer_names,
                                          store=probe_args["store"], progress=progress):
            if "error" in result:
                report.failures.append({"task": "real_tempo", "name": str(result["name"]), "error": str(result["error"])})
            elif progress:
                print(f"  {'real tempo':<10} {result['name']:<22} Acc1 {result['test']['acc1']:.3f} "
                      f"Acc2 {result['test']['acc2']:.3f}", flush=True)
    report.peers_run = sorted(set(report.peers_run))
    report.wall_s = time.perf_counter() - started
    atomic_write_json(out / "bench_last_run.json", {**report.__dict__})
    return report


def _checked_tasks(suite_dir: Path, tasks: list[str] | None) -> list[str]:
    available = suite_tasks(suite_dir)
    tasks = list(tasks or available)
    for task in tasks:
        TASKS.get(task)  # unknown names fail with a suggestion
        if task not in available:
            raise ConfigError(f"task {task!r} is not a benchmarked task of suite {suite_dir} (it has: "
                              f"{', '.join(available) or 'none'}); drop it from --tasks or rebuild the suite.")
    return tasks


def _run_pair(report: BenchReport, out: Path, suite_dir: Path, task: str, encoder: str,
              probe_args: dict[str, object]) -> None:
    """One encoder's probe sweep on one task; a failure is recorded and the bench goes on."""
    report.pairs += 1
    name = safe_stem(encoder)
    spec = get_spec(encoder)
    try:
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
        report.failures.append(_record_failure(out, task, encoder, exc))
        return
    (out / "failures" / f"{task}__{name}.json").unlink(missing_ok=True)
    report.jobs_trained += summary["jobs"]["trained"]  # type: ignore[index]
    report.jobs_reused += summary["jobs"]["reused"]  # type: ignore[index]
    if probe_args["progress"]:
        layer, stats = validated_layer(summary)
        print(f"  {task:<10} {encoder:<22} {layer} (chosen on valid {stats['valid_headline']:.3f}): "
              f"test {stats['headline']['mean']:.3f}", flush=True)


def _run_peers(report: BenchReport, out: Path, suite_dir: Path, task: str, peer_names: list[str], *,
               force: bool, progress: bool) -> None:
    """Every requested, installed peer of ``task`` (finished ones are reused unless ``force``)."""
    for spec in peers_for(task):
        if spec.name not in peer_names:
            continue
        if peer_version(spec) is None:
            if spec.name not in report.peers_missing:
                report.peers_missing.append(spec.name)
            continue
        path = out / "peers" / f"{task}__{spec.name}.json"
        if path.is_file() and not force:
            report.peers_run.append(spec.name)
            continue
        try:
            result = run_peer(spec, suite_dir / task, progress=progress)
        except Exception as exc:
            report.failures.append(_record_failure(out, task, spec.name, exc))
            continue
        atomic_write_json(path, result)
        (out / "failures" / f"{task}__{spec.name}.json").unlink(missing_ok=True)
        report.peers_run.append(spec.name)
        if progress:
            print(f"  {task:<10} {'peer ' + spec.name:<22} {result['test']['headline']:.3f}", flush=True)


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


def _record_failure(out: Path, task: str, name: str, exc: BaseException) -> dict[str, str]:
    record = {"task": task, "name": name, "error": f"{type(exc).__name__}: {exc}",
              "traceback": "".join(traceback.format_exception(exc))[-4000:]}
    atomic_write_json(out / "failures" / f"{task}__{safe_stem(name)}.json", record)
    return record
