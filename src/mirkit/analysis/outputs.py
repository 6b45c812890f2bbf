"""What ``mirkit analyze`` writes (see docs/analyze.md):

- ``OUT/<name>.json`` per audio file: every task's result (``<name>``: the file's path under the input
  folder, its folders kept, without the audio suffix);
- beside it ``<name>.beats.txt`` and ``<name>.downbeats.txt`` (one time in seconds per line), ``<name>.lab``
  (start, end, Harte chord label) and ``<name>.mid`` (the notes, one piano track);
- ``OUT/analysis.jsonl`` (or ``analysis.csv``): one summary row per file;
- ``OUT/skipped.jsonl``: the files that were not analysed, with their reason.
Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from mirkit.analysis.run import AnalyzeReport
from mirkit.files import atomic_write_text
from mirkit.kinds import frame_kind

#: the frame kind whose files each frame-level task writes
FILE_KINDS = {"beats": "beat", "chords": "chords", "notes": "transcription"}
SUMMARY_FIELDS = ("path", "duration_s", "key", "key_confidence", "tempo_bpm", "beats", "downbeats", "chords",
                  "notes", "instrument", "instrument_score", "tags", "json")


def output_names(paths: list[str], roots: list[str | Path]) -> dict[str, str]:
    """Per audio path the output name: its path under the input folder it came from (or its file name), without
    the suffix; a name that two files would share gets ``-2``, ``-3``... ."""
    folders = [Path(r).resolve() for r in roots if Path(r).is_dir()]
    names: dict[str, str] = {}
    taken: set[str] = set()
    for path in paths:
        resolved = Path(path).resolve()
        name = resolved.with_suffix("").name
        for folder in folders:
            if resolved.is_relative_to(folder):
                name = resolved.relative_to(folder).with_suffix("").as_posix()
                break
        base, count = name, 1
        while name in taken:
            count += 1
            name = f"{base}-{count}"
        taken.add(name)
        names[path] = name
    return names


def summary_row(result: dict[str, Any], json_name: str) -> dict[str, Any]:
    """The flat summary of one file's analysis (``analysis.jsonl`` / ``.csv``)."""
    key, beats = result.get("key", {}), result.get("beats", {})
    instrument, tags = result.get("instrument", {}), result.get("tags", {})
    top = next(iter(instrument.get("scores", {}).items()), (None, None))
    return {"path": result["path"], "duration_s": result.get("duration_s"), "key": key.get("key"),
            "key_confidence": key.get("confidence"), "tempo_bpm": beats.get("tempo_bpm"),
            "beats": len(beats["beats"]) if "beats" in beats else None,
            "downbeats": len(beats["downbeats"]) if "downbeats" in beats else None,
            "chords": len(result["chords"]["chords"]) if "chords" in result else None,
            "notes": len(result["notes"]["notes"]) if "notes" in result else None,
            "instrument": top[0], "instrument_score": top[1],
            "tags": tags.get("tags"), "json": json_name}


def write_outputs(report: AnalyzeReport, *, out_dir: str | Path, roots: list[str | Path], fmt: str = "jsonl",
                  meta: dict[str, Any] | None = None) -> Path:
    """Write every file's outputs and the folder's summary into ``out_dir``; returns the summary's path."""
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"format {fmt!r} must be 'jsonl' or 'csv'.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = output_names([r["path"] for r in report.results], roots)
    rows = []
    for result in report.results:
        stem = out / names[result["path"]]
        stem.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(stem.with_name(stem.name + ".json"), json.dumps({**result, "heads": meta or {}}, indent=1))
        for task, kind in FILE_KINDS.items():
            if task in result:
                frame_kind(kind).write_files(stem, result[task])
        rows.append(summary_row(result, f"{names[result['path']]}.json"))
    atomic_write_text(out / "skipped.jsonl", "".join(json.dumps(s) + "\n" for s in report.skipped))
    if fmt == "jsonl":
        path = out / "analysis.jsonl"
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
        return path
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (" ".join(v) if isinstance(v, list) else v) for k, v in row.items()})
    path = out / "analysis.csv"
    atomic_write_text(path, buffer.getvalue())
    return path


__all__ = ["FILE_KINDS", "output_names", "summary_row", "write_outputs"]
