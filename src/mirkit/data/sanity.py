"""Checks that rendered audio agrees with its labels, using estimators that know nothing of mirkit.

- pitch: pYIN (librosa) median f0 of a note vs its MIDI label;
- key: Krumhansl-Schmuckler, i.e. the correlation of mean CQT chroma with the Krumhansl-Kessler
  (1982) major/minor profiles rotated to each tonic;
- tempo: librosa's beat tracker vs the groove's BPM (Acc2, octave errors allowed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mirkit.data.manifest import read_manifest
from mirkit.kinds.key import krumhansl_key
from mirkit.metrics import tempo_accuracy


def key_agreement(task_dir: Path, *, source: str | None = None) -> float:
    import librosa
    import soundfile as sf

    entries = [e for e in read_manifest(task_dir / "manifest.jsonl") if source is None or e.source == source]
    hits = 0
    for entry in entries:
        y, rate = sf.read(task_dir / entry.path)
        hits += krumhansl_key(librosa.feature.chroma_cqt(y=y, sr=rate).mean(axis=1)) == entry.labels["key"]
    return hits / len(entries)


def tempo_agreement(task_dir: Path, *, source_prefix: str | None = None) -> tuple[float, float]:
    """(Acc1, Acc2) of librosa's beat tracker against the labelled BPM (clips whose source starts with the prefix)."""
    import librosa
    import soundfile as sf

    entries = [e for e in read_manifest(task_dir / "manifest.jsonl")
               if source_prefix is None or e.source.startswith(source_prefix)]
    if not entries:
        return float("nan"), float("nan")
    estimates = []
    for entry in entries:
        y, rate = sf.read(task_dir / entry.path)
        estimates.append(float(np.atleast_1d(librosa.beat.beat_track(y=y, sr=rate)[0])[0]))
    return tempo_accuracy([e.labels["bpm"] for e in entries], estimates)


def pitch_agreement(task_dir: Path, *, every: int = 1) -> tuple[float, float]:
    """(exact, pitch class) agreement of pYIN with the note labels on every ``every``-th clip."""
    import librosa
    import soundfile as sf

    entries = read_manifest(task_dir / "manifest.jsonl")[::every]
    exact = chroma = 0
    for entry in entries:
        y, rate = sf.read(task_dir / entry.path)
        f0, voiced, _ = librosa.pyin(y[: int(rate * 1.5)], fmin=30, fmax=2100, sr=rate, frame_length=4096)
        if not np.any(voiced):
            continue
        error = librosa.hz_to_midi(np.nanmedian(f0[voiced])) - int(entry.labels["pitch"])
        exact += abs(error) < 0.5
        chroma += round(error) % 12 == 0
    return exact / len(entries), chroma / len(entries)
