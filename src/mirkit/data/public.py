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
| giantsteps-mtg-key | ``annotations/annotations.txt`` (ID, MANUAL KEY, C) + ``audio/<ID>.LOFI.mp3`` | train/valid 9:1 by track; single keys of confidence >= 2 only; test on giantsteps-key |
| emomusic | ``annotations/songs_info.csv`` + ``annotations/static_annotations.csv`` + ``clips_45seconds/<id>.mp3`` | MediaEval 2013: evaluation = test; development = train/valid 7:1 by song |
| vocalset | ``FULL/<singer>/<context>/<technique>/*.wav`` + ``{train,test}_singers_technique.txt`` | technique: by singer as listed (valid: 2 train singers); singer: by exercise 8:1:1 |
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from mirkit.data.manifest import ManifestEntry, write_manifest
from mirkit.data.task_folder import write_task_info
from mirkit.data.tasks import TASKS
from mirkit.errors import ConfigError
from mirkit.files import sha256_text
from mirkit.kinds.labels import PITCH_NAMES


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


def _bucket(key: str, *, parts: int) -> int:
    """A stable bucket in ``range(parts)`` for ``key`` (same on every machine and Python run)."""
    return int(sha256_text(key)[:8], 16) % parts


def adapt_giantsteps_mtg_key(root: Path, *, min_confidence: int = 2) -> dict[str, list[ManifestEntry]]:
    """GiantSteps-MTG-keys (1,486 Beatport tracks): training material for GiantSteps key.

    Kept: one key per track (no ``A / B`` alternatives, no ``-``) with confidence ``C >= min_confidence``.
    """
    annotations = _need(root / "annotations" / "annotations.txt",
                        "GiantSteps-MTG-keys' annotations/annotations.txt (tab-separated ID, MANUAL KEY, C)")
    with open(annotations, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    if not rows or [c.strip().upper() for c in rows[0][:3]] != ["ID", "MANUAL KEY", "C"]:
        raise DatasetLayoutError(f"{annotations}: expected the header 'ID, MANUAL KEY, C' (tab-separated), got "
                                 f"{rows[0][:3] if rows else 'an empty file'}.")
    entries = []
    for row in rows[1:]:
        if len(row) < 3 or "/" in row[1] or row[1].strip() in ("", "-"):
            continue
        try:
            confidence = int(row[2])
        except ValueError:
            raise DatasetLayoutError(f"{annotations}: confidence {row[2]!r} of track {row[0]} is not 0, 1 or 2.") from None
        if confidence < min_confidence:
            continue
        key = normalise_key(row[1], where=f"{annotations} (track {row[0]})")
        split = "valid" if _bucket(row[0], parts=10) == 0 else "train"
        entries.append(_entry(root / "audio" / f"{row[0].strip()}.LOFI.mp3", split, {"key": key},
                              source="giantsteps-mtg-key", licence="CC-BY-SA (Beatport previews; see the dataset)",
                              piece=f"giantsteps-mtg:{row[0].strip()}"))
    if not entries:
        raise DatasetLayoutError(f"{annotations} has no single-key track with confidence >= {min_confidence}.")
    return {"giantsteps-mtg-key": entries}


def _read_csv(path: Path, *, what: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
    with open(_need(path, what), newline="", encoding="utf-8-sig") as handle:
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]
    missing = [c for c in columns if not rows or c not in rows[0]]
    if missing:
        raise DatasetLayoutError(f"{path}: columns {missing} are missing; expected {what} with {list(columns)}.")
    return rows


def adapt_emomusic(root: Path) -> dict[str, list[ManifestEntry]]:
    """EmoMusic (Soleymani et al. 2013): static arousal and valence (1-9) of 45 s clips, as a 2-d regression."""
    folder = next((root / name for name in ("annotations", ".") if (root / name / "songs_info.csv").is_file()),
                  root / "annotations")
    info = _read_csv(folder / "songs_info.csv", what="EmoMusic's songs_info.csv",
                     columns=("song_id", "Mediaeval 2013 set"))
    static = _read_csv(folder / "static_annotations.csv", what="EmoMusic's static_annotations.csv",
                       columns=("song_id", "mean_arousal", "mean_valence"))
    values = {row["song_id"]: [float(row["mean_arousal"]), float(row["mean_valence"])] for row in static}
    clips = next((root / name for name in ("clips_45seconds", "clips") if (root / name).is_dir()),
                 root / "clips_45seconds")
    entries = []
    for row in info:
        song, subset = row["song_id"], row["Mediaeval 2013 set"].lower()
        if song not in values:
            continue  # songs without static annotations (dropped by the dataset's curation)
        if subset not in ("development", "evaluation"):
            raise DatasetLayoutError(f"{folder / 'songs_info.csv'}: song {song} has set {subset!r}; expected "
                                     "'development' or 'evaluation'.")
        split = "test" if subset == "evaluation" else ("valid" if _bucket(song, parts=8) == 0 else "train")
        entries.append(_entry(clips / f"{song}.mp3", split, {"arousal_valence": values[song]}, source="emomusic",
                              licence="CC-BY-NC (Free Music Archive clips; see the dataset)", piece=f"emomusic:{song}"))
    return {"emomusic-emotion": entries}


#: VocalSet's 10 techniques used for technique classification (Wilkins et al. 2018).
VOCALSET_TECHNIQUES = ("belt", "breathy", "inhaled", "lip_trill", "spoken", "straight", "trill", "trillo",
                       "vibrato", "vocal_fry")


def _singer(name: str) -> str:
    """'female3' / 'F3' / 'f3' -> 'f3'."""
    match = re.match(r"^(f|m)(?:e?male)?(\d+)$", name.strip().lower())
    return f"{match.group(1)}{match.group(2)}" if match else name.strip().lower()


def adapt_vocalset(root: Path) -> dict[str, list[ManifestEntry]]:
    """VocalSet (Wilkins et al. 2018): singing technique (10) with the dataset's singer split, and singer (20)."""
    full = next((root / name for name in ("FULL", "full") if (root / name).is_dir()), None)
    if full is None:
        raise DatasetLayoutError(f"{root} has no FULL/ folder; expected VocalSet's FULL/<singer>/<context>/<technique>/.")
    lists = {}
    for split in ("train", "test"):
        path = _need(root / f"{split}_singers_technique.txt",
                     "VocalSet's train_singers_technique.txt and test_singers_technique.txt (one singer per line)")
        lists[split] = {_singer(s) for s in re.split(r"[\s,]+", path.read_text()) if s.strip()}
    valid_singers = set(sorted(lists["train"])[-2:])
    technique, singer = [], []
    for path in sorted(full.glob("*/*/*/*.wav")):
        who, tech = _singer(path.parts[-4]), path.parts[-2]
        exercise = re.sub(rf"^{who}_", "", path.stem)  # the same vocalise sung by every singer
        common = dict(source="vocalset", licence="CC-BY-4.0", piece=f"vocalset:{who}:{exercise}")
        if tech in VOCALSET_TECHNIQUES and (who in lists["train"] or who in lists["test"]):
            split = "test" if who in lists["test"] else "valid" if who in valid_singers else "train"
            technique.append(_entry(path, split, {"technique": tech, "singer": who}, **common))
        bucket = _bucket(exercise, parts=10)
        split = "test" if bucket == 0 else "valid" if bucket == 1 else "train"
        singer.append(_entry(path, split, {"singer": who, "technique": tech},
                             **{**common, "piece": f"vocalset-exercise:{exercise}"}))
    if not singer:
        raise DatasetLayoutError(f"{full} holds no <singer>/<context>/<technique>/*.wav files.")
    return {"vocalset-technique": technique, "vocalset-singer": singer}


ADAPTERS: dict[str, Callable[..., dict[str, list[ManifestEntry]]]] = {
    "nsynth": adapt_nsynth, "mtt": adapt_mtt, "mtg-jamendo": adapt_mtg_jamendo,
    "giantsteps-key": adapt_giantsteps_key, "gtzan": adapt_gtzan, "giantsteps-mtg-key": adapt_giantsteps_mtg_key,
    "emomusic": adapt_emomusic, "vocalset": adapt_vocalset,
}


#: the task of every folder an adapter writes, where its folder name (``<dataset>-<task>``) does not say it
ADAPTER_TASKS = {"mtg-jamendo": "tagging"}  # every MTG-Jamendo subset (top50tags, genre, moodtheme, ...) is tags


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
        write_task_info(folder, TASKS.get(ADAPTER_TASKS.get(name) or task.rsplit("-", 1)[-1]), name=task)
        counts[task] = len(entries)
    return counts
