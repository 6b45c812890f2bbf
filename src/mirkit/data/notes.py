"""NSynth-like single notes for the ``instrument`` and ``pitch`` tasks.

An instrument is a (GM program, soundfont) pair, and splits are by instrument: programs on the
training soundfonts are divided between train and valid; every program on the test soundfont
(never used for train) forms the test split, so the test set holds unseen instruments. With a
single soundfont, each family's programs are divided three ways instead (test programs unseen).

Each note has its own pitch (the family's playable range), velocity (the whole range, 20-127: soft notes
sound different, not only quieter) and length (:data:`HOLDS_S`: staccato to sustained), so a head
learns the instrument rather than one way of playing it (issue #34).
"""

from __future__ import annotations

import random

from mirkit.data.render import Score

#: GM programs (0-based) per NSynth family, with a playable MIDI range.
FAMILY_PROGRAMS: dict[str, tuple[tuple[int, ...], tuple[int, int]]] = {
    "keyboard": ((0, 1, 2, 3, 4, 5, 6, 7), (36, 96)),
    "mallet": ((8, 9, 10, 11, 12, 13, 14, 15), (60, 96)),
    "organ": ((16, 17, 18, 19, 20, 21, 22, 23), (36, 84)),
    "guitar": ((24, 25, 26, 27, 28, 29, 30, 31), (40, 76)),
    "bass": ((32, 33, 34, 35, 36, 37, 38, 39), (28, 55)),
    "string": ((40, 41, 42, 43, 44, 48, 49, 50), (40, 84)),
    "vocal": ((52, 53, 54), (48, 76)),
    "brass": ((56, 57, 58, 59, 60, 61, 62, 63), (40, 77)),
    "reed": ((64, 65, 66, 67, 68, 69, 70, 71), (48, 84)),
    "flute": ((72, 73, 74, 75, 76, 77, 78, 79), (60, 96)),
    "synth_lead": ((80, 81, 82, 83, 84, 85, 86, 87), (40, 84)),
}
NOTE_S = 3.0
#: how long a note is held, staccato to sustained (the clip is NOTE_S long: the release rings on)
HOLDS_S = (0.15, 0.4, 1.0, 2.5)
VELOCITY_RANGE = (20, 127)


def plan_notes(*, per_instrument: int, train_soundfonts: list[str], test_soundfont: str, seed: int) -> list[dict]:
    """Jobs for single notes: one dict per clip with its score, split and labels."""
    rng = random.Random(seed)
    jobs = []
    for family, (programs, (low, high)) in FAMILY_PROGRAMS.items():
        ordered = list(programs)
        rng.shuffle(ordered)
        n_held = max(1, len(ordered) // 4)
        if test_soundfont in train_soundfonts:  # one soundfont: hold out whole programs for test
            split_of = {p: ("test" if i < n_held else "valid" if i < 2 * n_held else "train") for i, p in enumerate(ordered)}
            pairs = [(p, test_soundfont, split_of[p]) for p in programs]
        else:
            split_of = {p: ("valid" if i < n_held else "train") for i, p in enumerate(ordered)}
            pairs = [(p, sf, split_of[p]) for sf in train_soundfonts for p in programs]
            pairs += [(p, test_soundfont, "test") for p in programs]
        for program, soundfont, split in pairs:
            for k in range(per_instrument):
                pitch = rng.randint(low, high)
                velocity = rng.randint(*VELOCITY_RANGE)
                hold_s = rng.choice(HOLDS_S)
                score = Score(duration_s=NOTE_S, programs={0: program})
                score.add(0, pitch, 0.0, hold_s, velocity)
                instrument = f"{soundfont}-p{program:03d}"
                jobs.append({
                    "name": f"{family}/{instrument}-n{pitch:03d}-v{velocity:03d}-{k}", "score": score,
                    "soundfont": soundfont, "split": split, "piece": instrument,
                    "labels": {"family": family, "pitch": str(pitch), "program": program, "velocity": velocity,
                               "hold_s": hold_s},
                    "source": "generated:single-note",
                })
    return jobs
