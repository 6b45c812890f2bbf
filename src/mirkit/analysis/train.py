"""``mirkit analyze train``: probe every candidate encoder of every analysis task on a suite, keep the
head chosen on the validation split, and write a bundle (:mod:`mirkit.analysis.bundle`).

Each (task, encoder) pair is a `mirkit probe` run under ``WORK/runs/<task>/<encoder>/`` (resumable:
finished jobs are reused) with features in ``WORK/features``. Choice: the encoder and layer with the
best mean validation headline over seeds; the test split is read only to report the chosen row and
the candidates' rows, never to choose. All heads use one level policy (``loudness``), so
``mirkit analyze`` extracts each encoder once for every head that reads it.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirkit.adapt.config import ProbeRunConfig
from mirkit.adapt.predict import best_job
from mirkit.analysis.bundle import ANALYSIS_TASKS, BUNDLE_FILE, FORMAT_VERSION, Bundle, parse_tasks
from mirkit.analysis.card import write_model_card
from mirkit.data.task_folder import load_task
from mirkit.data.tasks import TASKS
from mirkit.errors import ConfigError
from mirkit.files import atomic_write_json

#: frame rate of CREPE's features when CREPE is a candidate (its hop is free)
CREPE_RATE_HZ = 25.0
#: the shipped bundle's size limit (issue #34)
MAX_BUNDLE_BYTES = 10 * 1024 * 1024


@dataclass
class BundleTrainConfig:
    """What ``mirkit analyze train`` trains.

    Attributes:
        suite_dir: a suite built by ``mirkit data build`` (or a user's suite with the same task folders).
        out_dir: the bundle folder written.
        work_dir: probe runs and features (default: ``<out_dir>.work``).
        tasks: analysis tasks (comma list or ``all``).
        encoders: ``{task: candidates}`` overriding the registry's candidates.
        seeds: seeds per job (clip- and frame-level); the heads of every seed ship and are averaged.
        frame_head: the frame-level head (``linear`` or ``tcn``).
        loudness: the level policy of every head's features.
    """

    suite_dir: str | Path
    out_dir: str | Path
    work_dir: str | Path | None = None
    tasks: str = "all"
    encoders: dict[str, tuple[str, ...]] = field(default_factory=dict)
    seeds: int = 3
    frame_head: str = "linear"
    loudness: str = "peak"
    progress: bool = True

    def __post_init__(self) -> None:
        self.suite_dir, self.out_dir = Path(self.suite_dir), Path(self.out_dir)
        self.work_dir = Path(self.work_dir) if self.work_dir else self.out_dir.with_name(self.out_dir.name + ".work")


def parse_encoders(text: str | None) -> dict[str, tuple[str, ...]]:
    """``"key=logmel+chroma,beats=musicnn-mtt"`` -> ``{"key": ("logmel", "chroma"), ...}``."""
    out: dict[str, tuple[str, ...]] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        task, sep, names = part.partition("=")
        if not sep or not names.strip():
            raise ConfigError(f"--encoders {part!r}: expected TASK=ENCODER[+ENCODER...], e.g. key=logmel+chroma.")
        ANALYSIS_TASKS.get(task.strip())
        out[task.strip()] = tuple(n.strip() for n in names.split("+") if n.strip())
    return out


def _probe(config: BundleTrainConfig, task: str, encoder: str) -> Path:
    """The probe run of one (task, encoder) pair (resumed when it exists)."""
    from mirkit.adapt.run import probe_task

    spec = ANALYSIS_TASKS.get(task)
    task_dir = config.suite_dir / spec.suite_task
    frame_level = load_task(task_dir).kind.frame_level
    run_dir = config.work_dir / "runs" / task / encoder.replace(":", "_")
    run = ProbeRunConfig(task_dir=task_dir, encoder=encoder, out_dir=run_dir, store=config.work_dir / "features",
                         seeds=config.seeds, model=config.frame_head if frame_level else "linear",
                         loudness=config.loudness, augment="none" if frame_level else spec.augment,
                         frame_rate_hz=CREPE_RATE_HZ if encoder.removeprefix("random:").startswith("crepe") else None,
                         progress=config.progress)
    probe_task(run)
    return run_dir


def _row(run_dir: Path, encoder: str) -> dict[str, object]:
    """A candidate's chosen job: its validation mean and its test mean, std and range over seeds."""
    name, model_dirs, record = best_job(run_dir, include_weighted=False)
    records = [json.loads((run_dir / "results" / f"{d.name}.json").read_text()) for d in model_dirs]
    tests = np.array([float(r["test"]["headline"]) for r in records])
    valid = float(np.mean([float(r["valid"]["headline"]) for r in records]))
    return {"encoder": encoder, "job": name, "valid": valid,
            "test": {"mean": float(tests.mean()), "min": float(tests.min()), "max": float(tests.max()),
                     "std": float(tests.std()), "seeds": len(tests)},
            "metric": record.get("metric") or "headline", "model_dirs": model_dirs, "record": record}


def _copy_head(row: dict, dest: Path) -> None:
    """The chosen job's results and models into ``dest`` (a probe run cut down to that job)."""
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "results").mkdir(parents=True)
    for model_dir in row["model_dirs"]:
        run_dir = model_dir.parent.parent
        shutil.copy2(run_dir / "results" / f"{model_dir.name}.json", dest / "results" / f"{model_dir.name}.json")
        shutil.copytree(model_dir, dest / "models" / model_dir.name)
    summary = row["model_dirs"][0].parent.parent / "summary.json"
    if summary.is_file():
        shutil.copy2(summary, dest / "summary.json")


def _suite_facts(suite_dir: Path, tasks: list[str]) -> dict[str, object]:
    """Where the heads were trained: the suite's size, soundfonts and the manifests' digests of the tasks used."""
    info = json.loads((suite_dir / "suite.json").read_text()) if (suite_dir / "suite.json").is_file() else {}
    used = [ANALYSIS_TASKS.get(t).suite_task for t in tasks]
    digests = info.get("manifest_sha256", {})
    return {"path": str(suite_dir), "suite": info.get("suite"), "soundfonts": info.get("soundfonts"),
            "manifest_sha256": {t: digests.get(t) for t in used}}


def train_bundle(config: BundleTrainConfig) -> dict[str, object]:
    """Train (or resume) every task's candidates and write the bundle; returns ``bundle.json``'s contents."""
    from mirkit.provenance import provenance

    tasks = parse_tasks(config.tasks)
    missing = [t for t in tasks if not (config.suite_dir / ANALYSIS_TASKS.get(t).suite_task / "manifest.jsonl").is_file()]
    if missing:
        raise ConfigError(f"suite {config.suite_dir} lacks the task folders of {missing} "
                          f"({', '.join(ANALYSIS_TASKS.get(t).suite_task for t in missing)}); build it with "
                          f"`mirkit data build --suite standard --out {config.suite_dir}` or pass --tasks.")
    start = time.time()
    staging = config.out_dir.with_name(config.out_dir.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    entries: dict[str, object] = {}
    for task in tasks:
        spec = ANALYSIS_TASKS.get(task)
        candidates = config.encoders.get(task, spec.candidates)
        rows = [_row(_probe(config, task, encoder), encoder) for encoder in candidates]
        best = max(rows, key=lambda r: (r["valid"], r["encoder"]))  # chosen on validation only
        _copy_head(best, staging / task)
        record = best["record"]
        level = "frame" if load_task(config.suite_dir / spec.suite_task).kind.frame_level else "clip"
        entries[task] = {
            "suite_task": spec.suite_task, "encoder": best["encoder"], "job": best["job"], "level": level,
            "kind": record["kind"], "seeds": best["test"]["seeds"], "loudness": config.loudness,
            "frame_rate_hz": CREPE_RATE_HZ if best["encoder"].removeprefix("random:").startswith("crepe") else None,
            "head": config.frame_head if level == "frame" else "linear",
            "augment": "none" if level == "frame" else spec.augment,
            "scores": {"metric": TASKS.get(spec.suite_task).metric, "valid": best["valid"], "test": best["test"]},
            "candidates": [{k: r[k] for k in ("encoder", "job", "valid", "test")} for r in rows],
        }
    info = {"format_version": FORMAT_VERSION, "suite": _suite_facts(config.suite_dir, tasks),
            "seeds": config.seeds, "loudness": config.loudness, "frame_head": config.frame_head,
            "tasks": entries, "train_s": round(time.time() - start, 1), "provenance": provenance(),
            "created": time.strftime("%Y-%m-%d")}
    atomic_write_json(staging / BUNDLE_FILE, info)
    write_model_card(Bundle(staging, info))
    size = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
    info["bytes"] = size
    atomic_write_json(staging / BUNDLE_FILE, info)
    if config.out_dir.exists():
        shutil.rmtree(config.out_dir)
    staging.rename(config.out_dir)
    return info


__all__ = ["BundleTrainConfig", "MAX_BUNDLE_BYTES", "parse_encoders", "train_bundle"]
