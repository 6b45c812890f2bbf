"""Adapters that turn a user's local copy of a public MIR dataset into mirkit manifests.

Each adapter reads the dataset's own layout in place (manifest paths are absolute), applies the
standard split, and raises :class:`~mirkit.errors.DatasetLayoutError` naming the missing or
malformed path and what was expected there.

| adapter | expected layout | split |
|---|---|---|
| nsynth | ``nsynth-{train,valid,test}/examples.json`` + ``audio/<note>.wav`` | the official one |
| mtt | ``annotations_final.csv`` (tab-separated) + ``mp3/<0-f>/...mp3`` | top-50 tags; dirs 0-b train, c valid, d-f test (12:1:3) |
| mtg-jamendo | ``data/splits/split-0/autotagging_<subset>-{train,validation,test}.tsv`` + audio folder | split-0 |
| giantsteps-key | ``audio/<id>.LOFI.mp3`` + ``annotations/key/<id>.LOFI.key`` | all test |
| gtzan | ``genres/<genre>/<genre>.000NN.{wav,au}`` + fault-filtered lists ``{train,valid,test}_filtered.txt`` | the given lists |
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from mirkit.data.manifest import ManifestEntry, write_manifest
from mirkit.data.tasks import PITCH_NAMES
from mirkit.errors import ConfigError


class DatasetLayoutError(ConfigError):
    """A dataset folder lacks a file the adapter needs, or a file does not parse."""


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetLayoutError(f"{path} is missing; expected {what}. Point --root at the dataset's top folder.")
    return path


def _entry(path: Path, split: str, labels: dict[str, object], *, source: str, licence: str, piece: str) -> ManifestEntry:
    return ManifestEntry(path=str(path.resolve()), split=split, labels=labels, duration_s=0.0, source=source,
                         licence=licence, piece=piece)


def adapt_nsynth(root: Path) -> dict[str, list[ManifestEntry]]:
    """NSynth: instrument family (11) and MIDI pitch; the official train/valid/test split."""
    instrument, pitch = [], []
    for split, folder in (("train", "nsynth-train"), ("valid", "nsynth-valid"), ("test", "nsynth-test")):
        examples_path = _need(root / folder / "examples.json", f"NSynth's {folder}/examples.json")
        try:
            examples = json.loads(examples_path.read_text())
        except ValueError as exc:
            raise DatasetLayoutError(f"{examples_path} is not valid JSON ({exc}); expected NSynth's examples.json.") from None
        for note, facts in sorted(examples.items()):
            try:
                family, midi, name = facts["instrument_family_str"], int(facts["pitch"]), facts["instrument_str"]
            except (KeyError, TypeError, ValueError):
                raise DatasetLayoutError(f"{examples_path}: entry {note!r} lacks instrument_family_str/pitch/"
                                         "instrument_str") from None
            audio = root / folder / "audio" / f"{note}.wav"
            common = dict(source="nsynth", licence="CC-BY-4.0", piece=f"nsynth:{name}")
            instrument.append(_entry(audio, split, {"family": family, "instrument": name}, **common))
            pitch.append(_entry(audio, split, {"pitch": str(midi)}, **common))
    return {"nsynth-instrument": instrument, "nsynth-pitch": pitch}


def adapt_mtt(root: Path, *, top: int = 50) -> dict[str, list[ManifestEntry]]:
    """MagnaTagATune: the ``top`` most frequent tags; the 12:1:3 split by the first mp3 directory."""
    annotations = _need(root / "annotations_final.csv", "MagnaTagATune's annotations_final.csv (tab-separated)")
    with open(annotations, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    header = rows[0] if rows else []
    if len(header) < 3 or header[0] != "clip_id" or header[-1] != "mp3_path":
        raise DatasetLayoutError(f"{annotations}: expected a header 'clip_id, <tags...>, mp3_path' (tab-separated), "
                                 f"got {header[:3]}...")
    tags = header[1:-1]
    counts = Counter()
    for row in rows[1:]:
        counts.update(tag for tag, flag in zip(tags, row[1:-1]) if flag == "1")
    chosen = [tag for tag, _ in counts.most_common(top)]
    entries = []
    for row in rows[1:]:
        mp3 = row[-1]
        folder = mp3.split("/")[0]
        split = "train" if folder in "0123456789ab" else "valid" if folder == "c" else "test"
        present = sorted(tag for tag, flag in zip(tags, row[1:-1]) if flag == "1" and tag in chosen)
        entries.append(_entry(root / "mp3" / mp3, split, {"tags": present}, source="magnatagatune",
                              licence="CC-BY-NC-SA-1.0 (Magnatune)", piece=f"mtt:{'-'.join(Path(mp3).stem.split('-')[:-2])}"))
    return {"mtt-tagging": entries}


def adapt_mtg_jamendo(root: Path, *, audio_dir: Path, subset: str = "top50tags") -> dict[str, list[ManifestEntry]]:
    """MTG-Jamendo split-0; ``subset`` in top50tags, genre, moodtheme, instrument."""
    entries = []
    for split, name in (("train", "train"), ("valid", "validation"), ("test", "test")):
        tsv = _need(root / "data" / "splits" / "split-0" / f"autotagging_{subset}-{name}.tsv",
                    f"MTG-Jamendo's split-0 file for '{subset}' (a checkout of the mtg-jamendo-dataset repository)")
        lines = tsv.read_text(encoding="utf-8").splitlines()
        if not lines or not lines[0].startswith("TRACK_ID"):
            raise DatasetLayoutError(f"{tsv}: expected a 'TRACK_ID\\tARTIST_ID\\tALBUM_ID\\tPATH\\tDURATION\\tTAGS' header.")
        for number, line in enumerate(lines[1:], start=2):
            fields = line.split("\t")
            if len(fields) < 6:
                raise DatasetLayoutError(f"{tsv}:{number}: expected at least 6 tab-separated fields, got {len(fields)}")
            entry = _entry(audio_dir / fields[3], split, {"tags": sorted(t.split("---")[-1] for t in fields[5:])},
                           source=f"mtg-jamendo:{subset}", licence="Creative Commons (per track, see Jamendo)",
                           piece=f"jamendo-artist:{fields[1]}")
            entry.duration_s = float(fields[4])
            entries.append(entry)
    return {f"mtg-jamendo-{subset}": entries}


_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E", "E#": "F", "B#": "C"}


def normalise_key(text: str, *, where: str) -> str:
    """'Eb minor', 'eb min', 'F# Major' -> 'D# minor', 'F# major' (sharps, as the key task's vocabulary)."""
    match = re.match(r"^\s*([A-Ga-g])([#b]?)\s*(major|minor|maj|min)\b", text.strip(), flags=re.IGNORECASE)
    if not match:
        raise DatasetLayoutError(f"{where}: cannot read a key from {text.strip()[:40]!r}; expected e.g. 'Eb minor'.")
    tonic = match.group(1).upper() + match.group(2)
    tonic = _FLATS.get(tonic, tonic)
    mode = "major" if match.group(3).lower().startswith("maj") else "minor"
    if tonic not in PITCH_NAMES:
        raise DatasetLayoutError(f"{where}: unknown tonic {tonic!r}")
    return f"{tonic} {mode}"


def adapt_giantsteps_key(root: Path) -> dict[str, list[ManifestEntry]]:
    """GiantSteps key (604 EDM excerpts): a test set; train on other material (e.g. GiantSteps-MTG-keys)."""
    key_dir = _need(root / "annotations" / "key", "GiantSteps' annotations/key/<id>.LOFI.key files")
    entries = []
    for key_file in sorted(key_dir.glob("*.key")):
        audio = root / "audio" / f"{key_file.stem}.mp3"
        entries.append(_entry(audio, "test", {"key": normalise_key(key_file.read_text(), where=str(key_file))},
                              source="giantsteps-key", licence="CC-BY-SA (Beatport previews; see the dataset)",
                              piece=f"giantsteps:{key_file.stem}"))
    if not entries:
        raise DatasetLayoutError(f"{key_dir} holds no .key files; expected GiantSteps' key annotations.")
    return {"giantsteps-key": entries}


def adapt_gtzan(root: Path, *, splits_dir: Path) -> dict[str, list[ManifestEntry]]:
    """GTZAN genre with the fault-filtered split (Kereliuk et al. 2015), read from the user's split files."""
    genres_dir = next((root / name for name in ("genres", "genres_original") if (root / name).is_dir()), None)
    if genres_dir is None:
        raise DatasetLayoutError(f"{root} has neither genres/ nor genres_original/; expected GTZAN's genre folders.")
    entries = []
    for split in ("train", "valid", "test"):
        listing = _need(splits_dir / f"{split}_filtered.txt",
                        "the fault-filtered GTZAN split lists (train_filtered.txt, valid_filtered.txt, test_filtered.txt, "
                        "one 'genre/genre.000NN.wav' per line)")
        for line in listing.read_text().split():
            genre = line.split("/")[0]
            stem = Path(line).stem
            audio = next((genres_dir / genre / f"{stem}{ext}" for ext in (".wav", ".au")
                          if (genres_dir / genre / f"{stem}{ext}").exists()), genres_dir / genre / f"{stem}.wav")
            entries.append(_entry(audio, split, {"genre": genre}, source="gtzan", licence="research use (GTZAN)",
                                  piece=f"gtzan:{stem}"))
    return {"gtzan-genre": entries}


ADAPTERS: dict[str, Callable[..., dict[str, list[ManifestEntry]]]] = {
    "nsynth": adapt_nsynth, "mtt": adapt_mtt, "mtg-jamendo": adapt_mtg_jamendo,
    "giantsteps-key": adapt_giantsteps_key, "gtzan": adapt_gtzan,
}


def adapt(name: str, *, root: str | Path, out_dir: str | Path, **options: object) -> dict[str, int]:
    """Run adapter ``name`` and write ``out_dir/<task>/manifest.jsonl``; returns clip counts per task."""
    if name not in ADAPTERS:
        raise ConfigError(f"unknown dataset {name!r}; expected one of {sorted(ADAPTERS)}.")
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"--root {str(root)!r} is not a folder; expected the {name} dataset's top folder.")
    manifests = ADAPTERS[name](root, **{k: Path(v) for k, v in options.items() if v is not None})
    counts = {}
    for task, entries in manifests.items():
        folder = Path(out_dir) / task
        folder.mkdir(parents=True, exist_ok=True)
        write_manifest(folder / "manifest.jsonl", entries)
        counts[task] = len(entries)
    return counts
