"""Augmented copies of a task's training clips for ``mirkit boost --augment``: the booster trains on
stored features, so augmentation happens offline. Each training clip gets ``copies`` copies through
the named label-preserving augmentations of :mod:`mirkit.audio.augment` (each applied with its
probability, drawn from a generator seeded by the clip and the copy, so a rerun writes the same
audio), written as 32-bit float WAV (a gain boost does not clip) under ``OUT/<task>/`` with a
training-only manifest: same labels and piece (a fraction that takes a piece takes its copies), the
augmentations recorded per clip, note sidecars referenced by absolute path. Their features are
extracted once into the run's store, like the originals'."""

from __future__ import annotations

import io
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mirkit.data.manifest import labels_for_copy, read_manifest
from mirkit.errors import ConfigError
from mirkit.files import atomic_write_bytes, write_jsonl


def write_augmented_copies(task_dir: Path, out_dir: Path, *, names: tuple[str, ...], copies: int,
                           progress: bool = True) -> Path:
    """``OUT/<task>/`` with the copies and their ``manifest.jsonl`` (written last: an existing manifest
    means the folder is complete and is reused). Clips that fail to decode are left out."""
    import soundfile as sf
    from tqdm.auto import tqdm

    from mirkit.audio import load
    from mirkit.audio.augment import augment_crop
    from mirkit.errors import AudioError

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
        for copy in range(copies):
            rng = np.random.default_rng([zlib.crc32(entry.path.encode()), copy])
            audio, _ = augment_crop(wave, rate, names, rng)
            dest = folder / "audio" / f"{Path(entry.path).stem}__aug{copy}.wav"
            buffer = io.BytesIO()
            sf.write(buffer, audio, rate, format="WAV", subtype="FLOAT")
            dest.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(dest, buffer.getvalue())
            rows.append({**asdict(entry), "path": dest.relative_to(folder).as_posix(), "labels": labels, "sha256": "",
                         "rendering": {**entry.rendering, "augmented_from": entry.path, "augmentations_drawn_from": list(names),
                                       "copy": copy}})
    write_jsonl(manifest, rows)
    return folder


__all__ = ["write_augmented_copies"]
