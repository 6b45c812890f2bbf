"""Essen folk songs (Schaffrath's Essen Associative Code collection, as ABC in music21's corpus) for
the ``key`` task.

Only the European collections are used (German, Lorraine, Luxembourg, ballads, children's songs,
Zuccalmaglio, ...); the Chinese collections are pentatonic, where a 24-key label is not meaningful.
Label, as for the chorales (issue #3): the key signature names a major key and its relative minor,
the final note decides between them; a song ending on neither tonic (modal) is dropped. The last
``duration_s`` seconds (ending on the final note) are rendered as a solo melody, transposed to
several keys. Variants of one song (Essen codes ``Q0001``, ``Q0001A``) and all transpositions
share a split.

Parsing is about 50 ms a song, so parsed songs are cached as JSON (``$MIRKIT_CACHE/essen-v1.json``).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from mirkit.data.chorales import label_from_signature
from mirkit.data.manifest import stratified_splits
from mirkit.data.render import Score
from mirkit.files import cache_dir
from mirkit.kinds.labels import PITCH_NAMES

#: European collections of the Essen corpus in music21 (file stems).
COLLECTIONS = ("altdeu10", "altdeu20", "ballad10", "ballad20", "ballad30", "ballad40", "ballad50", "ballad60",
               "ballad70", "ballad80", "boehme10", "boehme20", "dva0", "erk5", "erk10", "erk20", "erk30", "fink0",
               "kinder0", "lot", "lux", "zuccal0")
#: Solo melody instruments (GM programs): piano, violin, flute, clarinet, oboe, accordion, recorder, trumpet.
MELODY_PROGRAMS = (0, 40, 73, 71, 68, 21, 74, 56)
_ORDER_SEED = 0  # the order songs are parsed in: fixed, so a cache serves every suite seed


@dataclass(frozen=True)
class FolkSong:
    name: str  # <collection>:<X number>
    tune: str  # songs sharing a tune (variants) share a split
    tonic: int
    mode: str
    length_ql: float
    notes: tuple[tuple[int, float, float], ...]  # (midi pitch, onset ql, duration ql)


def _cache_path() -> Path:
    return cache_dir("essen-v1.json")


def _corpus_dir() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus" / "essenFolksong"


def song_blocks() -> list[tuple[str, str]]:
    """``(name, abc text)`` of every song of the European collections, in a fixed shuffled order."""
    blocks = []
    for stem in COLLECTIONS:
        path = _corpus_dir() / f"{stem}.abc"
        if not path.is_file():
            continue
        text = path.read_text(encoding="latin-1")
        for block in re.split(r"\n(?=X:)", text):
            match = re.match(r"X:\s*(\d+)", block)
            if match:
                blocks.append((f"{stem}:{match.group(1)}", block))
    random.Random(_ORDER_SEED).shuffle(blocks)
    return blocks


def parse_song(name: str, abc: str) -> FolkSong | None:
    """One ABC song -> :class:`FolkSong`, or ``None`` when unlabelled (modal ending, no signature, no notes)."""
    from music21 import converter

    try:
        score = converter.parse(abc, format="abc")
    except Exception:  # a malformed song is dropped, like a modal one
        return None
    flat = score.flatten()
    signatures = flat.getElementsByClass("KeySignature")
    notes = [(int(n.pitch.midi), float(n.offset), float(n.quarterLength)) for n in flat.notes if not n.isChord]
    if not signatures or len(notes) < 8:
        return None
    label = label_from_signature(int(signatures[0].sharps), notes[-1][0] % 12)
    if label is None:
        return None
    code = re.search(r"^N:\s*([A-Z]+\d+)[A-Z]?\s*$", abc, flags=re.MULTILINE)
    tune = f"essen:{code.group(1)}" if code else f"essen:{name}"
    return FolkSong(name, tune, label[0], label[1], max(o + d for _, o, d in notes), tuple(notes))


def load_folksongs(limit: int | None = None) -> list[FolkSong]:
    """Labelled songs among the first ``limit`` of :func:`song_blocks` (all when ``None``), cached."""
    cache = _cache_path()
    if cache.is_file():
        data = json.loads(cache.read_text())
        if data["complete"] or (limit is not None and data["parsed"] >= limit):
            order = set(data["order"][:limit] if limit is not None else data["order"])
            return [FolkSong(s["name"], s["tune"], s["tonic"], s["mode"], s["length_ql"],
                             tuple(tuple(n) for n in s["notes"])) for s in data["songs"] if s["name"] in order]
    blocks = song_blocks()
    chosen = blocks if limit is None else blocks[:limit]
    songs = [s for s in (parse_song(name, abc) for name, abc in chosen) if s is not None]
    from mirkit.files import atomic_write_bytes

    payload = {"parsed": len(chosen), "complete": len(chosen) == len(blocks), "order": [n for n, _ in chosen],
               "songs": [{"name": s.name, "tune": s.tune, "tonic": s.tonic, "mode": s.mode, "length_ql": s.length_ql,
                          "notes": [list(n) for n in s.notes]} for s in songs]}
    atomic_write_bytes(cache, json.dumps(payload).encode())
    return songs


def folksong_score(song: FolkSong, *, shift: int, bpm: float, duration_s: float, program: int) -> Score:
    """The last ``duration_s`` seconds of ``song`` transposed by ``shift`` semitones, as a solo line."""
    beat_s = 60.0 / bpm
    total_s = song.length_ql * beat_s
    start_s = max(0.0, total_s - duration_s)
    score = Score(duration_s=min(duration_s, total_s) + 0.5, programs={0: program})
    for pitch, onset, length in song.notes:
        onset_s, end_s = onset * beat_s - start_s, (onset + length) * beat_s - start_s
        if end_s > 0:
            score.add(0, pitch + shift, max(0.0, onset_s), end_s - max(0.0, onset_s), 90)
    return score


def plan_folksong_keys(songs: list[FolkSong], *, keys_per_piece: int, duration_s: float, train_soundfonts: list[str],
                       test_soundfont: str, seed: int) -> list[dict]:
    rng = random.Random(seed)
    mode_of_tune = {s.tune: s.mode for s in songs}
    tunes = sorted(mode_of_tune)
    split_of = dict(zip(tunes, stratified_splits([mode_of_tune[t] for t in tunes], seed=seed)))
    jobs = []
    for index, song in enumerate(songs):
        split = split_of[song.tune]
        program = rng.choice(MELODY_PROGRAMS)
        bpm = rng.uniform(90, 140)
        # keep the transposed melody in a singable range (MIDI 55-88 for the highest note)
        top = max(p for p, _, _ in song.notes)
        shifts = [s for s in range(-6, 6) if 55 <= top + s <= 88] or [0]
        for shift in rng.sample(shifts, min(keys_per_piece, len(shifts))):
            key = f"{PITCH_NAMES[(song.tonic + shift) % 12]} {song.mode}"
            soundfont = test_soundfont if split == "test" else train_soundfonts[index % len(train_soundfonts)]
            jobs.append({"name": f"folk-{song.name.replace(':', '-')}-{key.replace(' ', '_').replace('#', 's')}",
                         "score": folksong_score(song, shift=shift, bpm=bpm, duration_s=duration_s, program=program),
                         "soundfont": soundfont, "split": split, "piece": song.tune,
                         "labels": {"key": key, "essen": song.name}, "source": "music21:essen-folksong"})
    return jobs
