"""Augmented copies of a task's training clips for ``mirkit boost --augment`` and ``mirkit probe
--augment``: both train on stored features, so augmentation happens offline. Each training clip gets
``copies`` copies through the named augmentations of :mod:`mirkit.audio.augment` (each applied with
its probability, drawn from a generator seeded by the clip and the copy, so a rerun writes the same
audio), written under ``OUT/<task>/`` with a training-only manifest: the piece of the clip it copies
(a fraction that takes a piece takes its copies), the augmentations and label changes recorded per
clip. As 32-bit float WAV (``audio_format="wav"``: a gain boost does not clip), or as 24-bit FLAC
(``"flac"``, a third of the disk; a copy whose peak would pass full scale is scaled down to -1 dBFS
and its ``fit_gain`` recorded).

Labels follow the label-changing augmentations by the rules of :mod:`mirkit.data.label_rules`,
applied to the whole copy: a pitch shift transposes notes and chords and keeps beats and tags; a
speed change divides beat, chord and note times by the speed factor and multiplies the tempo (a
slower copy is cut at the clip's length, and labels past its end with it). A
copy whose notes changed gets its own note list and piano roll beside it; otherwise sidecars are
referenced by absolute path. A pitch shift that would push a note off the piano leaves that copy's
pitch alone. The copies' features are extracted once into the run's store, like the originals'.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mirkit.audio.loudness import PEAK_DBFS
from mirkit.data.manifest import labels_for_copy, read_manifest
from mirkit.data.task_folder import TASK_INFO
from mirkit.errors import ConfigError
from mirkit.files import atomic_write_bytes, write_jsonl


def _on_the_piano(notes: list[dict] | None) -> Callable[[dict[str, float]], bool]:
    """``accept`` for :func:`~mirkit.audio.augment.augment_crop`: a shift must keep every note in MIDI 21-108."""
    pitches = [int(n["pitch"]) for n in notes or []]
    if not pitches:
        return lambda changes: True
    low, high = min(pitches), max(pitches)
    return lambda changes: 21 <= low + changes.get("semitones", 0) and high + changes.get("semitones", 0) <= 108


def _write_notes(dest: Path, notes: list[dict], *, duration_s: float) -> dict[str, str]:
    """A copy's own note list and 100 fps piano roll beside ``dest``; their ``notes``/``piano_roll`` labels."""
    from mirkit.data.harmony import piano_roll

    notes_path, roll_path = dest.with_name(f"{dest.stem}.notes.json"), dest.with_name(f"{dest.stem}.roll.npz")
    atomic_write_bytes(notes_path, json.dumps(notes).encode())
    buffer = io.BytesIO()
    np.savez_compressed(buffer, roll=piano_roll(notes, duration_s=duration_s), fps=100)
    atomic_write_bytes(roll_path, buffer.getvalue())
    return {"notes": str(notes_path), "piano_roll": str(roll_path)}


def write_augmented_copies(task_dir: Path, out_dir: Path, *, names: tuple[str, ...], copies: int,
                           label_name: str | None = None, audio_format: str = "wav", progress: bool = True) -> Path:
    """``OUT/<task>/`` with the copies and their ``manifest.jsonl`` (written last: an existing manifest
    means the folder is complete and is reused). Clips that fail to decode are left out.

    ``label_name``: the task's label field, whose rule a label-changing augmentation follows (the caller
    has checked with :func:`~mirkit.data.label_rules.check_rules` that one exists)."""
    import soundfile as sf
    from tqdm.auto import tqdm

    from mirkit.audio import load
    from mirkit.audio.augment import augment_crop
    from mirkit.data.label_rules import relabel_copy
    from mirkit.errors import AudioError

    if audio_format not in ("wav", "flac"):
        raise ConfigError(f"audio_format={audio_format!r} must be 'wav' (32-bit float) or 'flac' (24-bit).")
    folder = out_dir / task_dir.name
    manifest = folder / "manifest.jsonl"
    if manifest.is_file():
        return folder
    entries = [e for e in read_manifest(task_dir / "manifest.jsonl") if e.split == "train"]
    if not entries:
        raise ConfigError(f"task {task_dir} has no training clips to augment.")
    rows = []
    for entry in tqdm(entries, desc=f"augment {task_dir.name}", unit="clip", disable=not progress or None):
        source = Path(entry.path) if Path(entry.path).is_absolute() else task_dir / entry.path
        try:
            wave, rate = load(source, sample_rate=None)
        except AudioError:
            continue
        labels = labels_for_copy(entry.labels, task_dir)
        notes = json.loads(Path(labels["notes"]).read_text()) if label_name == "notes" else None
        for copy in range(copies):
            rng = np.random.default_rng([zlib.crc32(entry.path.encode()), copy])
            audio, changes = augment_crop(wave, rate, names, rng, accept=_on_the_piano(notes))
            dest = folder / "audio" / f"{Path(entry.path).stem}__aug{copy}.{audio_format}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            copy_labels = dict(labels)
            if changes and label_name is not None:
                duration_s = len(audio) / rate  # a slower copy is cut at the clip's length
                if notes is not None:
                    copy_labels = relabel_copy(label_name, {**labels, "notes": notes}, changes, duration_s=duration_s)
                    copy_labels.update(_write_notes(dest, copy_labels["notes"], duration_s=duration_s))
                else:
                    copy_labels = relabel_copy(label_name, labels, changes, duration_s=duration_s)
            buffer, fit_gain = io.BytesIO(), 1.0
            if audio_format == "flac":
                peak = float(np.max(np.abs(audio))) if audio.size else 0.0
                ceiling = 10 ** (PEAK_DBFS / 20)  # the peak policy's -1 dBFS
                fit_gain = ceiling / peak if peak > ceiling else 1.0
                sf.write(buffer, audio * fit_gain, rate, format="FLAC", subtype="PCM_24")
            else:
                sf.write(buffer, audio, rate, format="WAV", subtype="FLOAT")
            atomic_write_bytes(dest, buffer.getvalue())
            rows.append({**asdict(entry), "path": dest.relative_to(folder).as_posix(), "labels": copy_labels,
                         "sha256": "", "duration_s": round(len(audio) / rate, 6),
                         "rendering": {**entry.rendering, "augmented_from": entry.path,
                                       "augmentations_drawn_from": list(names), "label_changes": changes,
                                       "copy": copy, **({"fit_gain": round(fit_gain, 6)} if fit_gain != 1 else {})}})
    info = task_dir / TASK_INFO
    if info.is_file():  # the copies are the same task: they say their kind as the originals do
        atomic_write_bytes(folder / TASK_INFO, info.read_bytes())
    write_jsonl(manifest, rows)  # the manifest last: it marks the folder complete
    return folder


__all__ = ["write_augmented_copies"]
