"""Generated grooves for the ``tempo``, ``genre`` and ``tagging`` tasks.

Each style is a template: meter, tempo range, drum pattern on a 16th grid, a bass and a comping
pattern, and the GM programs it may use. A piece is a style + key + progression + instruments +
tempo; labels are exact by construction (the tempo is the one the notes were placed at).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from mirkit.data.annotations import beat_grid
from mirkit.data.manifest import stratified_splits
from mirkit.data.music import PROGRESSIONS, triad, voice
from mirkit.data.notes import FAMILY_PROGRAMS
from mirkit.data.render import Score

KICK, SNARE, RIM, HAT, PEDAL, RIDE, CRASH = 36, 38, 37, 42, 44, 51, 49  # General MIDI drum keys


@dataclass(frozen=True)
class Style:
    meter: int  # beats per bar
    bpm: tuple[float, float]
    swing: bool
    drums: dict[int, str]  # GM drum note -> pattern ('x' loud, 'o' soft) on a 4-per-beat grid
    bass: str
    comp: str
    comp_programs: tuple[int, ...]
    bass_programs: tuple[int, ...]
    lead_programs: tuple[int, ...] = ()


STYLES: dict[str, Style] = {
    "rock": Style(4, (90, 160), False, {KICK: "x.......x.x.....", SNARE: "....x.......x...", HAT: "x.x.x.x.x.x.x.x."},
                  "eighths", "power", (29, 30, 27), (33, 34)),
    "swing": Style(4, (110, 220), True, {RIDE: "x...x.x.x...x.x.", PEDAL: "....x.......x...", KICK: "o..............."},
                   "walking", "comp_2_4", (0, 4, 26), (32,), (65, 56, 66)),
    "bossa": Style(4, (110, 150), False, {KICK: "x..xx..xx..xx..x", RIM: "x..x..x...x..x..", HAT: "x.x.x.x.x.x.x.x."},
                   "bossa", "syncopated", (24, 0), (32, 33), (73, 65)),
    "waltz": Style(3, (90, 180), False, {KICK: "x...........", SNARE: "....o...o...", HAT: "x...x...x..."},
                   "downbeat", "beats_2_3", (21, 0, 48), (32, 58)),
    "march": Style(4, (100, 130), False, {KICK: "x.......x.......", SNARE: "x.x.xxx.x.x.xxx.", CRASH: "x..............."},
                   "root_fifth", "sustain", (61, 56, 57), (58,), (72, 73)),
    "ballad": Style(4, (55, 80), False, {KICK: "x.........o.....", RIM: "....x.......x...", HAT: "o...o...o...o..."},
                    "whole", "arpeggio", (0, 4, 48), (32, 33), (73, 40)),
    "funk": Style(4, (90, 120), False, {KICK: "x..x..x...x..x..", SNARE: "....x..o.o..x...", HAT: "xoxoxoxoxoxoxoxo"},
                  "sixteenths", "stabs", (7, 27), (36, 37), (62,)),
    "reggae": Style(4, (65, 90), False, {KICK: "........x.......", RIM: "........x.......", HAT: "..x...x...x...x."},
                    "reggae", "skank", (16, 27), (33, 32), (64,)),
}


def _step_time(step: int, *, beat_s: float, swing: bool) -> float:
    beat, sub = divmod(step, 4)
    if swing and sub == 2:  # the "and" lands two thirds into the beat
        return (beat + 2 / 3) * beat_s
    return (beat + sub / 4) * beat_s


def _bass_notes(kind: str, chord: list[int], bar_start: float, beat_s: float, meter: int, rng: random.Random):
    root = 36 + (chord[0] % 12)
    fifth = root + 7
    if kind == "eighths":
        return [(bar_start + i * beat_s / 2, beat_s / 2 * 0.9, root) for i in range(meter * 2)]
    if kind == "walking":
        line = [root, chord[1] - 12 * ((chord[1] - root) // 12), fifth, fifth + rng.choice((1, -1, 2))]
        return [(bar_start + i * beat_s, beat_s * 0.95, line[i % 4]) for i in range(meter)]
    if kind == "bossa":
        return [(bar_start, beat_s * 1.4, root), (bar_start + 1.5 * beat_s, beat_s * 0.5, fifth),
                (bar_start + 2 * beat_s, beat_s * 1.4, fifth), (bar_start + 3.5 * beat_s, beat_s * 0.5, root)]
    if kind == "downbeat":
        return [(bar_start, beat_s * 0.9, root)]
    if kind == "root_fifth":
        return [(bar_start + i * beat_s, beat_s * 0.8, root if i % 2 == 0 else fifth - 12) for i in range(meter)]
    if kind == "whole":
        return [(bar_start, beat_s * meter * 0.98, root)]
    if kind == "sixteenths":
        steps = [0, 3, 6, 7, 10, 13]
        return [(bar_start + s * beat_s / 4, beat_s / 4 * 0.8, root + (12 if s in (7, 13) else 0)) for s in steps]
    if kind == "reggae":
        return [(bar_start + 2 * beat_s, beat_s * 0.9, root), (bar_start + 2.5 * beat_s, beat_s * 0.4, fifth),
                (bar_start + 3 * beat_s, beat_s * 0.9, root)]
    raise ValueError(kind)


def _comp_times(kind: str, beat_s: float, meter: int) -> list[tuple[float, float]]:
    """(offset within the bar, length) of each comping chord."""
    if kind == "power":
        return [(i * beat_s / 2, beat_s / 2 * 0.8) for i in range(meter * 2)]
    if kind == "comp_2_4":
        return [(1 * beat_s, beat_s * 0.6), (3 * beat_s, beat_s * 0.6)]
    if kind == "syncopated":
        return [(0, beat_s * 0.9), (1.5 * beat_s, beat_s * 0.9), (3 * beat_s, beat_s * 0.9)]
    if kind == "beats_2_3":
        return [(beat_s, beat_s * 0.8), (2 * beat_s, beat_s * 0.8)]
    if kind == "sustain":
        return [(0, beat_s * meter * 0.95)]
    if kind == "stabs":
        return [(0.75 * beat_s, beat_s * 0.2), (2.5 * beat_s, beat_s * 0.2), (3.25 * beat_s, beat_s * 0.2)]
    if kind == "skank":
        return [(1.5 * beat_s, beat_s * 0.3), (3.5 * beat_s, beat_s * 0.3)]
    if kind == "arpeggio":
        return [(i * beat_s / 2, beat_s / 2) for i in range(meter * 2)]
    raise ValueError(kind)


def groove(*, style_name: str, tonic: int, mode: str, bpm: float, duration_s: float, rng: random.Random,
           dense: bool) -> tuple[Score, dict[str, object]]:
    """A groove of ``style_name`` at ``bpm`` in ``tonic``/``mode``; returns the score and its facts."""
    style = STYLES[style_name]
    beat_s = 60.0 / bpm
    bar_s = beat_s * style.meter
    progression = rng.choice(PROGRESSIONS[mode])
    comp_program = rng.choice(style.comp_programs)
    bass_program = rng.choice(style.bass_programs)
    programs = {0: comp_program, 1: bass_program, 9: 0}
    lead = dense and bool(style.lead_programs)
    if lead:
        programs[2] = rng.choice(style.lead_programs)
    score = Score(duration_s=duration_s, programs=programs)
    grid = 4 * style.meter
    for bar in range(math.ceil(duration_s / bar_s)):
        start = bar * bar_s
        chord_pcs = triad(tonic, mode, progression[bar % len(progression)])
        chord = voice(chord_pcs, low=55)
        for drum, pattern in style.drums.items():
            for step, hit in enumerate(pattern[:grid]):
                if hit != ".":
                    score.add(9, drum, start + _step_time(step, beat_s=beat_s, swing=style.swing), 0.1,
                              105 if hit == "x" else 60)
        for onset, length, pitch in _bass_notes(style.bass, chord, start, beat_s, style.meter, rng):
            score.add(1, pitch, onset, length, 95)
        for i, (offset, length) in enumerate(_comp_times(style.comp, beat_s, style.meter)):
            notes = [chord[i % 3]] if style.comp == "arpeggio" else chord
            for pitch in notes:
                score.add(0, pitch, start + offset, length, 80)
        if lead:
            for k in range(style.meter):
                if rng.random() < 0.7:
                    score.add(2, rng.choice(chord) + 12, start + k * beat_s, beat_s * 0.9, 85)
    families = {_family(comp_program), _family(bass_program)} | ({_family(programs[2])} if lead else set())
    facts = {"style": style_name, "bpm": round(bpm, 3), "meter": style.meter, "mode": mode, "tonic": tonic,
             "progression": list(progression), "programs": {str(k): v for k, v in programs.items()},
             "families": sorted(families), "dense": dense}
    return score, facts


def _family(program: int) -> str:
    for family, (programs, _) in FAMILY_PROGRAMS.items():
        if program in programs:
            return family
    return "keyboard" if program < 8 else "organ" if 16 <= program < 24 else "synth_lead"


def tempo_class(bpm: float) -> str:
    return "slow" if bpm < 90 else "medium" if bpm < 140 else "fast"


def plan_grooves(*, pieces: int, duration_s: float, train_soundfonts: list[str], test_soundfont: str, seed: int,
                 tempo_range: tuple[float, float] | None = None, task: str) -> list[dict]:
    """Jobs for ``task`` in (tempo, genre): one clip per piece, pieces split 70/15/15."""
    rng = random.Random(seed)
    jobs = []
    names = list(STYLES)
    splits = stratified_splits([names[i % len(names)] for i in range(pieces)], seed=seed)
    for index in range(pieces):
        style_name = names[index % len(names)]
        style = STYLES[style_name]
        if tempo_range:  # log-uniform, so every octave is equally represented
            bpm = math.exp(rng.uniform(math.log(tempo_range[0]), math.log(tempo_range[1])))
        else:
            bpm = rng.uniform(*style.bpm)
        mode = rng.choice(("major", "minor"))
        score, facts = groove(style_name=style_name, tonic=rng.randrange(12), mode=mode, bpm=bpm,
                              duration_s=duration_s, rng=rng, dense=rng.random() < 0.5)
        split = splits[index]
        soundfont = test_soundfont if split == "test" else train_soundfonts[index % len(train_soundfonts)]
        tags = [facts["style"], *facts["families"], "drums", mode, tempo_class(bpm), "dense" if facts["dense"] else "sparse"]
        labels = {"bpm": facts["bpm"], "genre": style_name, "tags": sorted(set(tags)),
                  **beat_grid(bpm=bpm, beats_per_bar=style.meter, duration_s=duration_s)}
        jobs.append({"name": f"{task}-{index:05d}-{style_name}", "score": score, "soundfont": soundfont, "split": split,
                     "piece": f"{task}-{index:05d}", "labels": labels, "facts": facts,
                     "source": f"generated:groove:{style_name}"})
    return jobs
