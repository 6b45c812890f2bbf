"""Bach chorales from music21's corpus for the ``key`` task.

Label: the key signature names a major key and its relative minor; the final chord's bass decides
between them. Chorales where the final bass is neither tonic (modal endings, half cadences) are
dropped, as issue #3 asks. The last ``duration_s`` seconds are rendered (they end on the final
cadence in the labelled key), transposed to several keys; all transpositions and all
harmonisations of one tune (same title) share a split.

Parsing all 400 scores takes minutes, so the extracted notes are cached as JSON.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

from mirkit.data.manifest import stratified_splits
from mirkit.data.render import Score
from mirkit.files import cache_dir
from mirkit.kinds.labels import PITCH_NAMES

SATB = ("soprano", "alto", "tenor", "bass")
ENSEMBLES = ((19, 19, 19, 19), (40, 41, 42, 43), (52, 52, 52, 52), (73, 68, 71, 70), (56, 60, 57, 58), (0, 0, 0, 0))


@dataclass(frozen=True)
class Chorale:
    name: str
    tune: str  # melody fingerprint: harmonisations of one tune share a split
    tonic: int
    mode: str
    length_ql: float
    notes: tuple[tuple[int, int, float, float], ...]  # (voice, midi pitch, onset ql, duration ql)


def _cache_path() -> Path:
    return cache_dir("chorales-v2.json")


def label_from_signature(sharps: int, final_bass_pc: int) -> tuple[int, str] | None:
    major = (7 * sharps) % 12
    minor = (major + 9) % 12
    if final_bass_pc == major:
        return major, "major"
    if final_bass_pc == minor:
        return minor, "minor"
    return None


def _extract(path: Path) -> Chorale | None:
    from music21 import corpus

    score = corpus.parse(str(path))
    parts = {(p.partName or "").strip().lower(): p for p in score.parts}
    voices = [parts.get(name) for name in SATB]
    if any(v is None for v in voices):
        return None
    signatures = score.flatten().getElementsByClass("KeySignature")
    if not signatures:
        return None
    notes = []
    for index, part in enumerate(voices):
        for element in part.flatten().notes:
            if element.isChord:
                continue
            notes.append((index, int(element.pitch.midi), float(element.offset), float(element.quarterLength)))
    if not notes:
        return None
    final_onset = max(n[2] for n in notes if n[0] == 3)
    final_bass = [n for n in notes if n[0] == 3 and n[2] == final_onset][0][1]
    label = label_from_signature(int(signatures[0].sharps), final_bass % 12)
    if label is None:
        return None
    # the corpus has no tune titles: harmonisations of one tune share the soprano melody, so its
    # first 12 intervals (transposition-invariant) identify the tune
    soprano = [n[1] for n in sorted((n for n in notes if n[0] == 0), key=lambda n: n[2])][:13]
    tune = "melody:" + ",".join(str(b - a) for a, b in zip(soprano, soprano[1:]))
    return Chorale(path.stem, tune, label[0], label[1], float(max(n[2] + n[3] for n in notes)), tuple(notes))


def load_chorales(limit: int | None = None) -> list[Chorale]:
    """Labelled chorales (cached); ``limit`` parses only the first N scores of the corpus."""
    cache = _cache_path()
    if cache.is_file():
        data = json.loads(cache.read_text())
        if data["complete"] or (limit is not None and data["parsed"] >= limit):
            items = [Chorale(c["name"], c["tune"], c["tonic"], c["mode"], c["length_ql"],
                             tuple(tuple(n) for n in c["notes"])) for c in data["chorales"]]
            return items if limit is None else [c for c in items if c.name in set(data["order"][:limit])]
    from music21 import corpus

    paths = sorted(p for p in corpus.getComposer("bach") if re.match(r"bwv[\d.]+$", p.stem))
    chosen = paths if limit is None else paths[:limit]
    chorales = [c for c in (_extract(p) for p in chosen) if c is not None]
    from mirkit.files import atomic_write_bytes

    payload = {"parsed": len(chosen), "complete": limit is None or limit >= len(paths),
               "order": [p.stem for p in chosen],
               "chorales": [{"name": c.name, "tune": c.tune, "tonic": c.tonic, "mode": c.mode, "length_ql": c.length_ql,
                             "notes": [list(n) for n in c.notes]} for c in chorales]}
    atomic_write_bytes(cache, json.dumps(payload).encode())
    return chorales


def chorale_score(chorale: Chorale, *, shift: int, bpm: float, duration_s: float, programs: tuple[int, ...]) -> Score:
    """The last ``duration_s`` seconds of ``chorale`` transposed by ``shift`` semitones."""
    beat_s = 60.0 / bpm
    total_s = chorale.length_ql * beat_s
    start_s = max(0.0, total_s - duration_s)
    score = Score(duration_s=min(duration_s, total_s) + 0.5, programs=dict(enumerate(programs)))
    for voice, pitch, onset, length in chorale.notes:
        onset_s, end_s = onset * beat_s - start_s, (onset + length) * beat_s - start_s
        if end_s > 0:
            score.add(voice, pitch + shift, max(0.0, onset_s), end_s - max(0.0, onset_s), 80 if voice else 90)
    return score


def chorale_chords(chorale: Chorale, score: Score, *, bpm: float, duration_s: float) -> list[list[object]]:
    """Chord segments of a rendered chorale clip: the pitch classes sounding on each quarter-note beat of
    the score (beats placed where :func:`chorale_score` cut the clip)."""
    from mirkit.data.annotations import chords_on_beats

    beat_s = 60.0 / bpm
    start_s = max(0.0, chorale.length_ql * beat_s - duration_s)
    first_beat_s = math.ceil(start_s / beat_s - 1e-9) * beat_s - start_s
    notes = [(n.pitch, n.start_s, n.end_s) for n in score.notes]
    return chords_on_beats(notes, beat_s=beat_s, duration_s=score.duration_s, first_beat_s=first_beat_s)


def plan_chorale_keys(chorales: list[Chorale], *, keys_per_piece: int, duration_s: float, train_soundfonts: list[str],
                      test_soundfont: str, seed: int) -> list[dict]:
    rng = random.Random(seed)
    mode_of_tune = {c.tune: c.mode for c in chorales}
    tunes = sorted(mode_of_tune)
    split_of = dict(zip(tunes, stratified_splits([mode_of_tune[t] for t in tunes], seed=seed)))
    jobs = []
    for index, chorale in enumerate(chorales):
        split = split_of[chorale.tune]
        programs = rng.choice(ENSEMBLES)
        bpm = rng.uniform(60, 90)
        for shift in rng.sample(range(-6, 6), keys_per_piece):
            tonic = (chorale.tonic + shift) % 12
            key = f"{PITCH_NAMES[tonic]} {chorale.mode}"
            soundfont = test_soundfont if split == "test" else train_soundfonts[index % len(train_soundfonts)]
            score = chorale_score(chorale, shift=shift, bpm=bpm, duration_s=duration_s, programs=programs)
            jobs.append({"name": f"chorale-{chorale.name}-{key.replace(' ', '_').replace('#', 's')}",
                         "score": score, "soundfont": soundfont, "split": split, "piece": f"chorale:{chorale.tune}",
                         "labels": {"key": key, "bwv": chorale.name,
                                    "chords": chorale_chords(chorale, score, bpm=bpm, duration_s=duration_s)},
                         "source": "music21:bach-chorale"})
    return jobs
