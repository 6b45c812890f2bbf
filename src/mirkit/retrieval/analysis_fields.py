"""Search by analysis (issue #34): the key, tempo, instrument and chords of every indexed track, and filters on them.

`mirkit index` runs the shipped analysis heads (:mod:`mirkit.analysis`) on the tracks it has not analysed
yet and keeps a summary per track id in ``LIB/analysis.json`` (tracks that changed are analysed again;
tracks that left the index are dropped); the query snapshot carries the fields, so filters cost a mask.

A filter is written as a user says it, e.g. ``"D minor, 110-130 BPM, piano"``:

- a key: a tonic (``D``, ``F#``, ``Bb``) with ``major``/``minor`` (``maj``, ``min``, ``m``), or a tonic alone;
- a tempo: ``110-130 BPM`` or ``120 bpm`` (within 4 %);
- an instrument family (:data:`mirkit.data.tasks.FAMILIES`) or a common word for one (``piano`` is
  ``keyboard``, ``violin`` is ``string``, ``sax`` is ``reed``...): among the track's two most probable
  families.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.errors import ConfigError
from mirkit.files import atomic_write_json

ANALYSIS_FILE = "analysis.json"
#: what the index runs (notes and tags are left out: the index has its own tags, and notes are not searched)
INDEX_TASKS = ("key", "beats", "chords", "instrument")
FIELDS = ("key", "key_confidence", "tempo_bpm", "instrument", "instruments", "chords")
FAMILY_WORDS = {"piano": "keyboard", "keys": "keyboard", "keyboard": "keyboard", "violin": "string",
                "strings": "string", "cello": "string", "fiddle": "string", "sax": "reed", "saxophone": "reed",
                "clarinet": "reed", "oboe": "reed", "trumpet": "brass", "horn": "brass", "trombone": "brass",
                "voice": "vocal", "vocals": "vocal", "choir": "vocal", "synth": "synth_lead", "lead": "synth_lead",
                "marimba": "mallet", "vibraphone": "mallet", "bells": "mallet", "flutes": "flute", "whistle": "flute"}
_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E"}
TEMPO_TOLERANCE = 0.04


def summarize(result: dict) -> dict[str, object]:
    """The fields the index keeps of one file's analysis."""
    out: dict[str, object] = {}
    if "key" in result:
        out["key"], out["key_confidence"] = result["key"]["key"], result["key"]["confidence"]
    if "beats" in result:
        out["tempo_bpm"] = result["beats"].get("tempo_bpm")
    if "instrument" in result:
        ranked = list(result["instrument"]["scores"].items())
        out["instrument"] = ranked[0][0]
        out["instruments"] = [name for name, p in ranked[:2] if p >= 0.2] or [ranked[0][0]]
    if "chords" in result:
        seconds: dict[str, float] = {}
        for start, end, label in result["chords"]["chords"]:
            if label != "N":
                seconds[label] = seconds.get(label, 0.0) + float(end) - float(start)
        out["chords"] = [label for label, _ in sorted(seconds.items(), key=lambda kv: -kv[1])[:6]]
    return out


def read_analysis(db: str | Path) -> dict[str, dict]:
    """``{track id: fields}`` of an index (empty when it was never analysed)."""
    path = Path(db) / ANALYSIS_FILE
    return json.loads(path.read_text())["tracks"] if path.is_file() else {}


def analyze_index(db: str | Path, tracks: list[tuple[str, str, int]], *, store: str | Path,
                  heads: str | Path | None = None, progress: bool = True) -> dict[str, int]:
    """Analyse the index's ``(id, path, mtime_ns)`` tracks that are new or changed since their analysis and write
    ``LIB/analysis.json``; returns counts (analysed, kept, skipped)."""
    from mirkit.analysis.bundle import Bundle
    from mirkit.analysis.run import analyze_paths

    db = Path(db)
    done = read_analysis(db)
    keep = {tid: done[tid] for tid, _, mtime in tracks if tid in done and done[tid].get("mtime_ns") == mtime}
    todo = [(tid, path, mtime) for tid, path, mtime in tracks if tid not in keep]
    skipped = 0
    if todo:
        bundle = Bundle.load(heads)
        report = analyze_paths([p for _, p, _ in todo], bundle=bundle, tasks=[t for t in INDEX_TASKS if t in bundle.tasks],
                               store=store, progress=progress)
        by_path = {r["path"]: r for r in report.results}
        for tid, path, mtime in todo:
            if path in by_path:
                keep[tid] = {**summarize(by_path[path]), "mtime_ns": mtime}
        skipped = len(report.skipped)
    atomic_write_json(db / ANALYSIS_FILE, {"tasks": list(INDEX_TASKS), "tracks": keep})
    return {"analysed": len(todo) - skipped, "kept": len(keep) - (len(todo) - skipped), "skipped": skipped}


@dataclass(frozen=True)
class TrackFilter:
    """Which tracks a search may return, by their analysis (``None``: any)."""

    tonic: str | None = None
    mode: str | None = None
    bpm_min: float | None = None
    bpm_max: float | None = None
    instrument: str | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.tonic, self.bpm_min, self.instrument))

    def mask(self, rows: list[dict]) -> np.ndarray:
        """``(tracks,)`` booleans; a track without the analysed field never matches a filter on it."""
        out = np.ones(len(rows), dtype=bool)
        for i, row in enumerate(rows):
            key = str(row.get("key") or "")
            if self.tonic is not None and (not key or key.split()[0] != self.tonic
                                           or (self.mode is not None and key.split()[1] != self.mode)):
                out[i] = False
            bpm = row.get("tempo_bpm")
            if self.bpm_min is not None and (bpm is None or not self.bpm_min <= float(bpm) <= self.bpm_max):
                out[i] = False
            if self.instrument is not None and self.instrument not in (row.get("instruments") or []):
                out[i] = False
        return out


def parse_where(text: str | None) -> TrackFilter:
    """``"D minor, 110-130 BPM, piano"`` -> :class:`TrackFilter`; a part that is none of key, tempo or instrument
    is an error that says what is understood."""
    from mirkit.data.tasks import FAMILIES

    if not text or not text.strip():
        return TrackFilter()
    values: dict[str, object] = {}
    for part in [p.strip() for p in re.split(r"[,;]", text) if p.strip()]:
        tempo = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:-|to|–)\s*(\d+(?:\.\d+)?)\s*(?:bpm)?", part, flags=re.I)
        single = re.fullmatch(r"(\d+(?:\.\d+)?)\s*bpm", part, flags=re.I)
        key = re.fullmatch(r"([A-Ga-g])\s*([#b♯♭]?)\s*(major|minor|maj|min|m)?", part)
        word = part.lower()
        if tempo:
            low, high = sorted((float(tempo.group(1)), float(tempo.group(2))))
            values.update(bpm_min=low, bpm_max=high)
        elif single:
            bpm = float(single.group(1))
            values.update(bpm_min=bpm * (1 - TEMPO_TOLERANCE), bpm_max=bpm * (1 + TEMPO_TOLERANCE))
        elif key:
            tonic = key.group(1).upper() + key.group(2).replace("♯", "#").replace("♭", "b")
            tonic = _FLATS.get(tonic, tonic)
            mode = key.group(3)
            values.update(tonic=tonic, mode=None if mode is None else "major" if mode.startswith("maj") else "minor")
        elif word in FAMILIES or word in FAMILY_WORDS:
            values["instrument"] = word if word in FAMILIES else FAMILY_WORDS[word]
        else:
            raise ConfigError(f"filter part {part!r} is not a key (D minor, F#, Bb major), a tempo (110-130 BPM, "
                              f"120 bpm) or an instrument ({', '.join(FAMILIES)}, or piano, violin, sax, ...).")
    return TrackFilter(**values)  # type: ignore[arg-type]


__all__ = ["ANALYSIS_FILE", "FIELDS", "INDEX_TASKS", "TrackFilter", "analyze_index", "parse_where", "read_analysis",
           "summarize"]
