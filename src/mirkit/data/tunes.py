"""Generated melody-led tunes for the ``key`` task (issue #34): what the progressions, chorales and Essen songs
leave out.

The progressions are block chords with a harmonic-minor dominant, the chorales four-part harmony, the
Essen songs solo melodies; none of them is a dance tune in a minor mode without a leading tone, and none
has a sparse accompaniment. A tune here is a melody of two-bar phrases (reel, jig, hornpipe or air
rhythm) in one of five modes, ending on the tonic, in one of three textures:

- ``solo``: the melody alone;
- ``vamp``: the melody over a sparse accompaniment (bass on the bar, a chord on the off-beats) of the
  mode's own triads, so a minor tune's dominant is minor (no raised leading tone) unless the mode is
  harmonic minor;
- ``drone``: the melody over a held tonic and fifth.

Modes and labels: ionian and mixolydian are major; aeolian, dorian and harmonic minor are minor (a
dorian or mixolydian tune is named by its tonic, as key annotations of folk music do). A tune is
rendered in several keys; every transposition stays in the tune's split.
"""

from __future__ import annotations

import random

from mirkit.data.manifest import stratified_splits
from mirkit.data.render import Score
from mirkit.kinds.labels import PITCH_NAMES

#: mode -> (scale steps, key label's mode)
MODES: dict[str, tuple[tuple[int, ...], str]] = {
    "ionian": ((0, 2, 4, 5, 7, 9, 11), "major"),
    "mixolydian": ((0, 2, 4, 5, 7, 9, 10), "major"),
    "aeolian": ((0, 2, 3, 5, 7, 8, 10), "minor"),
    "dorian": ((0, 2, 3, 5, 7, 9, 10), "minor"),
    "harmonic": ((0, 2, 3, 5, 7, 8, 11), "minor"),
}
TEXTURES = ("solo", "vamp", "drone")
#: rhythm -> (beats per bar, the note lengths of one beat in beats, beats per minute range)
RHYTHMS: dict[str, tuple[int, tuple[tuple[float, ...], ...], tuple[float, float]]] = {
    "reel": (4, ((0.5, 0.5), (0.5, 0.5), (1.0,), (0.25, 0.25, 0.5)), (90.0, 120.0)),
    "jig": (2, ((0.5, 0.5, 0.5), (1.0, 0.5), (1.5,)), (100.0, 130.0)),  # 6/8: a beat is a dotted quarter
    "hornpipe": (4, ((0.75, 0.25), (0.5, 0.5), (1.0,)), (70.0, 95.0)),
    "air": (3, ((1.0,), (2.0,), (0.5, 0.5), (1.5, 0.5)), (60.0, 90.0)),
}
#: melody instruments (GM): fiddle, flute, whistle, accordion, piano, clarinet, oboe, banjo, harmonica
MELODY_PROGRAMS = (40, 73, 78, 21, 0, 71, 68, 105, 22)
#: accompaniment instruments: piano, nylon and steel guitar, harp, organ
BACKING_PROGRAMS = (0, 24, 25, 46, 19)
#: the degrees a phrase's harmony moves through (0 = tonic; a mode's own triads on them)
PHRASE_HARMONY = ((0, 0, 4, 0), (0, 6, 0, 4), (0, 3, 0, 4), (0, 5, 3, 4), (0, 0, 6, 6), (0, 3, 4, 0))


def _triad(steps: tuple[int, ...], degree: int) -> list[int]:
    return [steps[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]


def tune_score(*, tonic: int, mode: str, texture: str, rhythm: str, seed: int, duration_s: float,
               melody_program: int, backing_program: int, bpm: float) -> Score:
    """One tune of ``duration_s`` seconds ending on a long tonic (the melody's last note; MIDI tonic 60-71)."""
    rng = random.Random(seed)
    steps = MODES[mode][0]
    per_bar, cells, _ = RHYTHMS[rhythm]
    beat_s = 60.0 / bpm
    bar_s = per_bar * beat_s
    bars = max(1, int(duration_s / bar_s) - 1)  # the phrases, then the final tonic (a bar)
    score = Score(duration_s=bars * bar_s + bar_s, programs={0: melody_program, 1: backing_program, 2: 32})
    base = 60 + tonic % 12
    harmony = [rng.choice(PHRASE_HARMONY)[i % 4] for i in range(bars)]
    harmony[-1] = rng.choice((4, 6)) if mode != "harmonic" else 4  # the cadence into the final tonic
    degree = rng.choice((0, 2, 4, 7))
    for bar in range(bars):
        chord = _triad(steps, harmony[bar])
        start = bar * bar_s
        for beat in range(per_bar):
            t = start + beat * beat_s
            for k, length in enumerate(rng.choice(cells)):
                if beat == 0 and k == 0:  # strong beats land on a chord tone
                    degree = min(range(-3, 12), key=lambda d: (
                        (steps[d % 7] + 12 * (d // 7)) % 12 not in [c % 12 for c in chord], abs(d - degree)))
                else:
                    degree = max(-3, min(11, degree + rng.choice((-2, -1, -1, 1, 1, 2, 0))))
                pitch = base + steps[degree % 7] + 12 * (degree // 7)
                score.add(0, pitch, t, length * beat_s * 0.92, rng.randint(70, 105))
                t += length * beat_s
        if texture == "vamp":
            score.add(2, base - 24 + chord[0] % 12, start, beat_s * 0.9, 80)
            for beat in range(1, per_bar):
                for pitch in chord:
                    score.add(1, base - 12 + pitch, start + beat * beat_s, beat_s * 0.5, 60)
    end = bars * bar_s
    score.add(0, base, end, bar_s * 0.95, 90)  # the final tonic
    if texture == "vamp":
        score.add(2, base - 24, end, bar_s * 0.95, 80)
        for pitch in _triad(steps, 0):
            score.add(1, base - 12 + pitch, end, bar_s * 0.95, 60)
    elif texture == "drone":
        for pitch in (base - 24, base - 17):
            score.add(1, pitch, 0.0, end + bar_s * 0.95, 55)
    return score


def plan_tune_keys(*, pieces: int, keys_per_piece: int, duration_s: float, train_soundfonts: list[str],
                   test_soundfont: str, seed: int) -> list[dict]:
    """Jobs for ``pieces`` generated tunes, each in ``keys_per_piece`` keys; splits by tune, stratified by mode."""
    rng = random.Random(seed)
    names = list(MODES)
    modes = [names[i % len(names)] for i in range(pieces)]
    splits = stratified_splits(modes, seed=seed)
    jobs = []
    for index, mode in enumerate(modes):
        texture, rhythm = TEXTURES[(index // len(names)) % len(TEXTURES)], rng.choice(list(RHYTHMS))
        low, high = RHYTHMS[rhythm][2]
        setting = dict(mode=mode, texture=texture, rhythm=rhythm, seed=rng.randrange(1 << 30),
                       melody_program=rng.choice(MELODY_PROGRAMS), backing_program=rng.choice(BACKING_PROGRAMS),
                       bpm=round(rng.uniform(low, high), 1), duration_s=duration_s)
        split = splits[index]
        for tonic in rng.sample(range(12), keys_per_piece):
            key = f"{PITCH_NAMES[tonic]} {MODES[mode][1]}"
            soundfont = test_soundfont if split == "test" else train_soundfonts[index % len(train_soundfonts)]
            jobs.append({"name": f"tune-{index:05d}-{key.replace(' ', '_').replace('#', 's')}",
                         "score": tune_score(tonic=tonic, **setting), "soundfont": soundfont, "split": split,
                         "piece": f"tune-{index:05d}",
                         "labels": {"key": key, "mode": mode, "texture": texture, "rhythm": rhythm},
                         "source": "generated:tune"})
    return jobs


__all__ = ["MODES", "RHYTHMS", "TEXTURES", "plan_tune_keys", "tune_score"]
