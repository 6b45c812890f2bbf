"""A task folder and its facts, loaded in one place for every consumer (probe, tune, boost, bench,
robustness, predict, pretrain): its task and kind, label field and vocabulary, its clips per split
with their labels (sidecar files read, unusable clips set aside with a reason), and the
aggregation of per-seed results.

A task folder holds ``manifest.jsonl`` and ``task.json`` (what :meth:`TaskSpec.to_dict` records: name,
kind, label, vocabulary, metric), written by ``mirkit data build`` and ``mirkit data adapt``. The kind
comes from ``task.json``, never from the folder's name; folders written before ``task.json`` existed
are read by their name (``key``, or ``<dataset>-<task>`` as ``mirkit data adapt`` named them), and
``mirkit data build`` adds the file to a suite it resumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mirkit.data.manifest import SPLITS, ManifestEntry, read_manifest, write_manifest
from mirkit.data.tasks import TASKS, TaskSpec
from mirkit.errors import ConfigError
from mirkit.files import atomic_write_json
from mirkit.kinds import ClipKind, FrameKind, TaskKind, clip_kind, frame_kind, get_kind

TASK_INFO = "task.json"


@dataclass(frozen=True)
class TaskFolder:
    """A task folder's facts.

    Attributes:
        path: the folder.
        name: the task (a registry key of :data:`~mirkit.data.tasks.TASKS`, or the adapter's own name).
        kind: its :class:`~mirkit.kinds.TaskKind`.
        label: the manifest ``labels`` field holding the target.
        vocabulary: the task's class names (empty for values and labels in time).
    """

    path: Path
    name: str
    kind: TaskKind
    label: str
    vocabulary: tuple[str, ...]

    @property
    def manifest(self) -> Path:
        return self.path / "manifest.jsonl"

    def entries(self) -> list[ManifestEntry]:
        return read_manifest(self.manifest)

    def clip_kind(self) -> ClipKind:
        """Its kind, which must be clip-level (a clear error names what handles the others)."""
        return clip_kind(self.kind.name, task=str(self.path))

    def frame_kind(self) -> FrameKind:
        """Its kind, which must be frame-level (a clear error names what handles the others)."""
        return frame_kind(self.kind.name, task=str(self.path))


def write_task_info(task_dir: str | Path, spec: TaskSpec, *, name: str | None = None) -> None:
    """``task.json`` of a task folder (``name``: the folder's own task name when it differs, e.g. an adapter's)."""
    info = spec.to_dict()
    if name:
        info["name"] = name
    atomic_write_json(Path(task_dir) / TASK_INFO, info)


def load_task(task_dir: str | Path) -> TaskFolder:
    """The facts of the task folder ``task_dir``.

    Raises:
        ConfigError: no manifest, or no ``task.json`` and a name that is no known task.
    """
    path = Path(task_dir)
    info_path = path / TASK_INFO
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text())
            return TaskFolder(path, str(info["name"]), get_kind(str(info["kind"])), str(info["label"]),
                              tuple(info.get("vocabulary", ())))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{info_path} is not a task description ({exc}); rebuild the folder or delete the file "
                              "to read the task from the folder's name.") from None
    if not (path / "manifest.jsonl").is_file():
        raise ConfigError(f"{path} is not a task folder (no manifest.jsonl); build a suite with "
                          f"`mirkit data build --suite quick --out DIR` and pass DIR/<task>.")
    spec = _spec_by_name(path)  # a folder from before task.json
    return TaskFolder(path, spec.name, spec.task_kind, spec.label, spec.vocabulary)


def _spec_by_name(path: Path) -> TaskSpec:
    name = path.resolve().name
    for candidate in (name, name.rsplit("-", 1)[-1]):
        if candidate in TASKS:
            return TASKS.get(candidate)
    raise ConfigError(f"cannot tell the task of folder {name!r}: it has no {TASK_INFO} and its name is none of "
                      f"{', '.join(TASKS)} (or '<dataset>-<task>' from `mirkit data adapt`).")


def clip_path(entry: ManifestEntry, manifest: Path) -> str:
    """The path of an entry's audio as extraction records it (relative paths joined to the manifest's folder)."""
    return entry.path if Path(entry.path).is_absolute() else str(manifest.parent / entry.path)


def clips_by_split(entries: list[ManifestEntry], manifest: Path, item_ids: dict[str, str],
                   label: str) -> tuple[dict[str, tuple[list[str], list[object]]], int]:
    """Per split, the item ids and labels (field ``label``) of the clips that have features, and how many have none."""
    by_split: dict[str, tuple[list[str], list[object]]] = {s: ([], []) for s in SPLITS}
    missing = 0
    for entry in entries:
        item_id = item_ids.get(clip_path(entry, manifest))
        if item_id is None:
            missing += 1
            continue
        by_split[entry.split][0].append(item_id)
        by_split[entry.split][1].append(entry.labels[label])
    return by_split, missing


def usable_entry(kind: TaskKind, entry: ManifestEntry, folder: Path,
                 skipped: list[dict[str, str]]) -> ManifestEntry | None:
    """``entry`` with its sidecar labels read, or ``None`` (appended to ``skipped`` with the reason) when its
    labels cannot be read or cannot train or score a model of ``kind``."""
    try:
        entry = replace(entry, labels=kind.read_labels(entry.labels, folder=folder))
    except (OSError, ValueError, KeyError) as exc:
        skipped.append({"path": entry.path, "reason": "bad_labels", "message": f"labels unreadable ({exc})"})
        return None
    problem = kind.label_problem(entry.labels, duration_s=entry.duration_s)
    if problem:
        skipped.append({"path": entry.path, "reason": "bad_labels", "message": problem})
        return None
    return entry


def entries_by_split(entries: list[ManifestEntry], manifest: Path, item_ids: dict[str, str], *, kind: TaskKind,
                     skipped: list[dict[str, str]]) -> dict[str, list[tuple[str, ManifestEntry]]]:
    """Per split, ``(item id, manifest entry)`` of the usable clips (sidecar labels read); each clip left
    out is appended to ``skipped`` with its reason."""
    by_split: dict[str, list[tuple[str, ManifestEntry]]] = {s: [] for s in SPLITS}
    for entry in entries:
        item = item_ids.get(clip_path(entry, manifest))
        if item is None:
            skipped.append({"path": entry.path, "reason": "no_features", "message": "extraction skipped it"})
            continue
        usable = usable_entry(kind, entry, manifest.parent, skipped)
        if usable is not None:
            by_split[entry.split].append((item, usable))
    return by_split


def derive_task(spec: TaskSpec, *, source_dir: Path, out_dir: Path) -> list[ManifestEntry]:
    """The manifest of a derived task (``spec.source`` names the task whose audio and labels it reads):
    every source clip, with ``spec.derive`` of its labels (sidecars read) as its labels and its path made
    relative to ``out_dir``; written beside the derived task's ``task.json``. Returns the entries."""
    import os

    if spec.source is None or spec.derive is None:
        raise ConfigError(f"task {spec.name!r} is not derived from another task.")
    source = load_task(source_dir)
    entries = []
    for entry in source.entries():
        labels = source.kind.read_labels(entry.labels, folder=source_dir)
        path = entry.path if Path(entry.path).is_absolute() else os.path.relpath(source_dir / entry.path, out_dir)
        entries.append(replace(entry, path=path, labels=spec.derive(labels)))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(out_dir / "manifest.jsonl", entries)
    write_task_info(out_dir, spec)
    return entries


def aggregate(runs: list[dict]) -> dict[str, object]:
    """Seeds of one job summarised: each test metric's mean and std, the mean validation headline (what a
    choice of layer reads; test scores are only reported), parameters, mean layer weights, training time."""
    metrics = sorted(runs[0]["test"])
    out: dict[str, object] = {}
    for metric in metrics:
        values = [r["test"][metric] for r in runs]
        out[metric] = {"mean": float(np.mean(values)), "std": float(np.std(values)) if len(values) > 1 else 0.0}
    out["valid_headline"] = float(np.mean([r["valid"]["headline"] for r in runs]))
    out["parameters"] = runs[0]["parameters"]
    weights = [r["layer_weights"] for r in runs if r.get("layer_weights")]
    if weights:
        out["layer_weights"] = [float(w) for w in np.mean(weights, axis=0)]
    out["train_s"] = float(sum(r["train_s"] for r in runs))
    return out


__all__ = ["TASK_INFO", "TaskFolder", "aggregate", "clip_path", "clips_by_split", "derive_task", "entries_by_split",
           "load_task", "usable_entry", "write_task_info"]
