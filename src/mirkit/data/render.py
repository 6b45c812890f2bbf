"""Render note events to audio with tinysoundfont (pure PyPI, no system synthesiser)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RENDER_SAMPLE_RATE = 22050


@dataclass(frozen=True)
class Note:
    """One note: channel, MIDI pitch, velocity, start and end in seconds."""

    channel: int
    pitch: int
    velocity: int
    start_s: float
    end_s: float


@dataclass
class Score:
    """Notes plus channel programs. Channel 9 is the GM drum channel."""

    duration_s: float
    programs: dict[int, int] = field(default_factory=dict)  # channel -> GM program (0-based)
    notes: list[Note] = field(default_factory=list)

    def add(self, channel: int, pitch: int, start_s: float, length_s: float, velocity: int = 90) -> None:
        if start_s < self.duration_s:
            self.notes.append(Note(channel, int(pitch), int(velocity), float(start_s),
                                   float(min(start_s + length_s, self.duration_s))))


class Renderer:
    """Keeps one synthesiser per soundfont; renders a :class:`Score` to mono float32."""

    def __init__(self, soundfont: str | Path, *, sample_rate: int = RENDER_SAMPLE_RATE, gain_db: float = -6.0) -> None:
        import tinysoundfont

        self.sample_rate = sample_rate
        self.synth = tinysoundfont.Synth(samplerate=sample_rate, gain=gain_db)
        self.sfid = self.synth.sfload(str(soundfont))
        self.used_channels: set[int] = set()

    def _reset(self) -> None:
        """Make the next render independent of the previous ones (so output does not depend on
        which worker rendered what): reset controllers, silence every voice, flush 1 s."""
        for channel in self.used_channels:
            self.synth.control_change(channel, 121, 0)  # reset all controllers
            self.synth.control_change(channel, 120, 0)  # all sound off
        if self.used_channels:
            self.synth.generate(self.sample_rate)

    def render(self, score: Score) -> np.ndarray:
        synth = self.synth
        self._reset()
        self.used_channels |= set(score.programs)
        for channel, program in score.programs.items():
            synth.program_select(channel, self.sfid, 128 if channel == 9 else 0, 0 if channel == 9 else program,
                                 is_drums=channel == 9)
        events = sorted([(n.start_s, 1, n) for n in score.notes] + [(n.end_s, 0, n) for n in score.notes],
                        key=lambda e: (e[0], e[1]))
        total = int(round(score.duration_s * self.sample_rate))
        out = np.zeros(total * 2, dtype=np.float32)
        position = 0
        for time_s, is_on, note in events:
            target = min(total, int(round(time_s * self.sample_rate)))
            if target > position:
                synth.generate(target - position, memoryview(out[2 * position : 2 * target].view(np.uint8)))
                position = target
            if is_on:
                synth.noteon(note.channel, note.pitch, note.velocity)
            else:
                synth.noteoff(note.channel, note.pitch)
        if position < total:
            synth.generate(total - position, memoryview(out[2 * position :].view(np.uint8)))
        mono = out.reshape(-1, 2).mean(axis=1)
        peak = float(np.abs(mono).max())
        if peak > 0.99:  # keep headroom without changing relative levels much
            mono *= 0.99 / peak
        return mono


def score_to_dict(score: Score) -> dict:
    """A JSON-ready copy of ``score`` (what a test clip's ``.score.json`` sidecar holds)."""
    return {"duration_s": score.duration_s, "programs": {str(k): v for k, v in score.programs.items()},
            "notes": [[n.channel, n.pitch, n.velocity, round(n.start_s, 6), round(n.end_s, 6)] for n in score.notes]}


def score_from_dict(data: dict) -> Score:
    """The inverse of :func:`score_to_dict`."""
    return Score(duration_s=float(data["duration_s"]), programs={int(k): int(v) for k, v in data["programs"].items()},
                 notes=[Note(int(c), int(p), int(v), float(s), float(e)) for c, p, v, s, e in data["notes"]])
