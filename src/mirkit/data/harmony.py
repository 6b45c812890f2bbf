"""Generated tonal progressions for the ``key`` task.

A piece is a progression (ending on a cadence), a rhythm/voicing seed and an instrumentation; it
is rendered in several keys, and every transposition of a piece stays in the piece's split. The
label is the key the piece was written in. Minor keys use the harmonic-minor dominant, as in
common-practice music, so the mode is audible.
"""

from __future__ import annotations

import random

from mirkit.data.annotations import chord_of, merge_segments
from mirkit.data.manifest import stratified_splits
from mirkit.data.music import PROGRESSIONS, scale, triad, voice
from mirkit.data.render import Score
from mirkit.kinds.labels import PITCH_NAMES

KEY_PROGRAMS = (0, 4, 19, 24, 48, 52, 46, 21)


def progression_piece(*, tonic: int, mode: str, degrees: tuple[int, ...], program: int, bass_program: int,
                      rhythm_seed: int, duration_s: float) -> Score:
    rng = random.Random(rhythm_seed)
    chord_s = duration_s / (2 * len(degrees))
    score = Score(duration_s=duration_s, programs={0: program, 1: bass_program, 2: program})
    steps = scale(mode)
    melody_degree = rng.choice((0, 2, 4))
    for repeat in range(2):
        for i, degree in enumerate(degrees):
            start = (repeat * len(degrees) + i) * chord_s
            pcs = triad(tonic, mode, degree)
            for pitch in voice(pcs, low=52):
                score.add(0, pitch, start, chord_s * 0.95, 70)
            score.add(1, 36 + pcs[0] % 12, start, chord_s * 0.95, 85)
            for k in range(2):  # a melody stepping through chord tones and scale steps
                melody_degree = max(0, min(9, melody_degree + rng.choice((-1, 1, 2, -2))))
                pitch = 72 + tonic % 12 + steps[melody_degree % 7] + 12 * (melody_degree // 7) - 12
                score.add(2, pitch, start + k * chord_s / 2, chord_s / 2 * 0.9, 90)
    # final tonic chord, long: the cadence that makes the key unambiguous
    return score


def progression_chords(*, tonic: int, mode: str, degrees: tuple[int, ...], duration_s: float) -> list[list[object]]:
    """The chord segments :func:`progression_piece` plays (the progression twice, each chord for
    ``duration_s / (2 * len(degrees))``), as Harte labels."""
    chord_s = duration_s / (2 * len(degrees))
    segments = [(k * chord_s, (k + 1) * chord_s, chord_of(set(triad(tonic, mode, degrees[k % len(degrees)]))))
                for k in range(2 * len(degrees))]
    return merge_segments(segments)


def plan_keys(*, pieces: int, keys_per_piece: int, duration_s: float, train_soundfonts: list[str],
              test_soundfont: str, seed: int) -> list[dict]:
    rng = random.Random(seed)
    jobs = []
    splits = stratified_splits([("major", "minor")[i % 2] for i in range(pieces)], seed=seed)
    for index in range(pieces):
        mode = ("major", "minor")[index % 2]
        degrees = rng.choice(PROGRESSIONS[mode])
        program, bass_program = rng.choice(KEY_PROGRAMS), rng.choice((32, 33, 42, 58))
        rhythm_seed = rng.randrange(1 << 30)
        split = splits[index]
        tonics = rng.sample(range(12), keys_per_piece)
        for tonic in tonics:
            score = progression_piece(tonic=tonic, mode=mode, degrees=degrees, program=program,
                                      bass_program=bass_program, rhythm_seed=rhythm_seed, duration_s=duration_s)
            key = f"{PITCH_NAMES[tonic]} {mode}"
            soundfont = test_soundfont if split == "test" else train_soundfonts[index % len(train_soundfonts)]
            jobs.append({"name": f"key-{index:05d}-{key.replace(' ', '_').replace('#', 's')}", "score": score,
                         "soundfont": soundfont, "split": split, "piece": f"key-{index:05d}",
                         "labels": {"key": key, "progression": list(degrees),
                                    "chords": progression_chords(tonic=tonic, mode=mode, degrees=degrees,
                                                                 duration_s=duration_s)},
                         "source": "generated:progression"})
    return jobs


ROLL_FPS = 100
TRANSCRIPTION_ENSEMBLE = (0, 48, 42, 71)  # piano, strings, cello, clarinet


def plan_transcription(*, pieces: int, duration_s: float, train_soundfonts: list[str], test_soundfont: str,
                       seed: int) -> list[dict]:
    """Piano (70%) or small-ensemble (30%) pieces; labels are the exact notes that were rendered."""
    rng = random.Random(seed)
    jobs = []
    splits = stratified_splits(["piece"] * pieces, seed=seed)
    for index in range(pieces):
        mode = rng.choice(("major", "minor"))
        ensemble = rng.random() < 0.3
        program = 0
        bass_program = rng.choice(TRANSCRIPTION_ENSEMBLE[1:]) if ensemble else 0
        score = progression_piece(tonic=rng.randrange(12), mode=mode, degrees=rng.choice(PROGRESSIONS[mode]),
                                  program=program, bass_program=bass_program, rhythm_seed=rng.randrange(1 << 30),
                                  duration_s=duration_s)
        if ensemble:
            score.programs[2] = rng.choice(TRANSCRIPTION_ENSEMBLE[1:])
        split = splits[index]
        soundfont = test_soundfont if split == "test" else train_soundfonts[index % len(train_soundfonts)]
        name = f"transcription-{index:05d}"
        jobs.append({"name": name, "score": score, "soundfont": soundfont, "split": split, "piece": name,
                     "labels": {"notes": f"audio/{name}.notes.json", "piano_roll": f"audio/{name}.roll.npz",
                                "ensemble": ensemble}, "source": "generated:progression-piece"})
    return jobs


def note_list(score: Score) -> list[dict[str, float]]:
    """The rendered notes (drums excluded), sorted by onset: onset_s, offset_s, pitch, velocity, program."""
    notes = [{"onset_s": round(n.start_s, 6), "offset_s": round(n.end_s, 6), "pitch": n.pitch, "velocity": n.velocity,
              "program": score.programs.get(n.channel, 0)} for n in score.notes if n.channel != 9]
    return sorted(notes, key=lambda n: (n["onset_s"], n["pitch"]))


def piano_roll(notes: list[dict[str, float]], *, duration_s: float, fps: int = ROLL_FPS):
    """``(88, frames)`` uint8 roll (MIDI 21-108) with velocity where a note sounds."""
    import numpy as np

    frames = int(round(duration_s * fps))
    roll = np.zeros((88, frames), dtype=np.uint8)
    for note in notes:
        if 21 <= note["pitch"] <= 108:
            start, end = int(round(note["onset_s"] * fps)), max(int(round(note["offset_s"] * fps)), int(round(note["onset_s"] * fps)) + 1)
            roll[int(note["pitch"]) - 21, start:end] = np.maximum(roll[int(note["pitch"]) - 21, start:end], int(note["velocity"]))
    return roll


#: General MIDI programs a generated corpus piece draws from: every pitched program but sound effects
MELODIC_PROGRAMS = tuple(range(0, 112))
BASS_PROGRAMS = (32, 33, 34, 35, 36, 37, 38, 39, 42, 43, 58, 70, 0, 19)


def corpus_piece(rng: random.Random, *, duration_s: float) -> tuple[Score, dict[str, object]]:
    """A random tonal piece for a pretraining corpus (``mirkit data corpus --sources generated``):
    diatonic progressions chained to fill ``duration_s`` at a random tempo, voiced chords, a bass line,
    a melody of chord tones and scale steps and, in most pieces, a drum kit; every program drawn from
    the General MIDI set. Returns the score and what was drawn (tonic, mode, BPM, programs)."""
    tonic, mode = rng.randrange(12), rng.choice(("major", "minor"))
    bpm = rng.uniform(60.0, 180.0)
    beat_s = 60.0 / bpm
    chord_beats = rng.choice((2, 4, 4, 8))
    programs = {0: rng.choice(MELODIC_PROGRAMS), 1: rng.choice(BASS_PROGRAMS), 2: rng.choice(MELODIC_PROGRAMS)}
    score = Score(duration_s=duration_s, programs=programs)
    steps = scale(mode)
    melody_degree, start, chord_s = rng.choice((0, 2, 4)), 0.0, chord_beats * beat_s
    low = rng.randrange(48, 60)
    while start < duration_s:
        for degree in rng.choice(PROGRESSIONS[mode]):
            pcs = triad(tonic, mode, degree)
            for pitch in voice(pcs, low=low):
                score.add(0, pitch, start, chord_s * 0.95, rng.randrange(55, 80))
            for beat in range(0, chord_beats, 2):  # bass on every other beat: root, then the fifth
                score.add(1, 36 + (pcs[0] if beat % 4 == 0 else pcs[2]) % 12, start + beat * beat_s, 1.9 * beat_s, 85)
            beat = 0.0
            while beat < chord_beats:
                length = rng.choice((0.5, 1.0, 1.0, 2.0))
                melody_degree = max(0, min(13, melody_degree + rng.choice((-2, -1, -1, 1, 1, 2))))
                pitch = 60 + tonic % 12 + steps[melody_degree % 7] + 12 * (melody_degree // 7)
                score.add(2, pitch, start + beat * beat_s, length * beat_s * 0.9, rng.randrange(75, 105))
                beat += length
            start += chord_s
    drums = rng.random() < 0.7
    if drums:
        score.programs[9] = 0
        for k in range(int(duration_s / beat_s) + 1):
            t = k * beat_s
            score.add(9, 36 if k % 2 == 0 else 38, t, 0.1, 95)  # kick on 1 and 3, snare on 2 and 4
            score.add(9, 42, t, 0.05, 70)
            score.add(9, 42, t + beat_s / 2, 0.05, 55)
    return score, {"tonic": PITCH_NAMES[tonic], "mode": mode, "bpm": round(bpm, 2), "drums": drums,
                   "programs": sorted({p for c, p in score.programs.items() if c != 9})}
