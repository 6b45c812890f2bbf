"""Perturbed copies of a task's test split, written once per (task, perturbation) and shared by every
run scored on them: ``AUDIO_ROOT/<task>/<perturbation>/`` with a ``manifest.jsonl`` (same labels,
split ``test``, the perturbation recorded per clip; note sidecars referenced by absolute path)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from mirkit.data.manifest import labels_for_copy, read_manifest
from mirkit.errors import ConfigError
from mirkit.files import write_jsonl
from mirkit.robustness.perturb import (
    PERTURBATIONS,
    perturb_file,
    perturbed_path,
    rerender,
    score_sidecar,
    write_perturbed,
)


def perturbed_split(task_dir: Path, audio_root: Path, perturbation: str, *, progress: bool = False) -> Path:
    """``audio_root/<task>/<perturbation>/manifest.jsonl``: the task's test clips, perturbed (reused when written)."""
    spec = PERTURBATIONS.get(perturbation)
    folder = audio_root / task_dir.name / perturbation
    manifest = folder / "manifest.jsonl"
    if manifest.is_file():
        return manifest
    entries = [e for e in read_manifest(task_dir / "manifest.jsonl") if e.split == "test"]
    if not entries:
        raise ConfigError(f"task {task_dir} has no test clips to perturb.")
    if spec.source == "score":
        _rerender_batch(task_dir, folder, entries, perturbation)
    rows, skipped = [], []
    iterator = entries
    if progress:
        from tqdm import tqdm

        iterator = tqdm(entries, desc=f"{perturbation} on {task_dir.name}", unit="clip", leave=False)
    for entry in iterator:
        source = task_dir / entry.path
        stem = folder / "audio" / Path(entry.path).stem
        try:
            written = perturb_file(source, stem, perturbation=perturbation, clip=entry.path)
        except Exception as exc:  # a clip that cannot be decoded or written is skipped with the reason
            skipped.append({"path": entry.path, "reason": type(exc).__name__, "message": str(exc)[:300]})
            continue
        labels = labels_for_copy(entry.labels, task_dir)
        rows.append({**asdict(entry), "labels": labels, "path": written.relative_to(folder).as_posix(), "sha256": "",
                     "rendering": {**entry.rendering, "perturbation": perturbation,
                                   "perturbation_description": spec.description}})
    if skipped:
        write_jsonl(folder / "skipped.jsonl", skipped)
    write_jsonl(manifest, rows)  # last: its presence marks the folder complete
    return manifest


def _rerender_batch(task_dir: Path, folder: Path, entries: list, perturbation: str, *, batch: int = 256) -> None:
    """Score perturbations: re-render the clips not written yet in a few FluidSynth runs (one per clip
    would start the program and load the soundfont each time). A batch that fails is left to the
    clip-by-clip pass, which records each clip's reason."""
    from mirkit.audio import load

    spec = PERTURBATIONS.get(perturbation)
    todo = [e for e in entries if score_sidecar(task_dir / e.path).is_file()
            and not perturbed_path(folder / "audio" / Path(e.path).stem, spec).is_file()]
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        try:
            waves = [load(task_dir / e.path, sample_rate=None) for e in chunk]
            rate = waves[0][1]
            audios = rerender([task_dir / e.path for e in chunk], peaks=[float(np.abs(w).max()) for w, _ in waves],
                              sample_rate=rate)
        except Exception:  # noqa: BLE001 - the clip-by-clip pass reports each clip's reason
            continue
        for entry, audio in zip(chunk, audios):
            write_perturbed(audio, perturbed_path(folder / "audio" / Path(entry.path).stem, spec), spec, rate)


def test_entries(manifest: Path):
    """``(resolved path, entry)`` of each test clip of ``manifest`` (relative paths are the manifest's)."""
    for entry in read_manifest(manifest):
        if entry.split == "test":
            yield (entry.path if Path(entry.path).is_absolute() else str(manifest.parent / entry.path)), entry
