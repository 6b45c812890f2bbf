"""FluidSynth (LGPL-2.1-or-later) as mirkit's second renderer, run as a separate program.

FluidSynth is never imported or linked: mirkit writes a MIDI file and runs the ``fluidsynth``
program in fast-render mode. It differs from tinysoundfont in what a listener hears: its own sample
interpolation, envelopes and filters, and a reverb and chorus that are on by default. The program is
used when it is on ``PATH``, or fetched with its missing libraries from Debian's archive (``apt-get
download`` + ``dpkg-deb -x`` into a cache folder, no system install; the libraries are found through
``LD_LIBRARY_PATH``).

Starting FluidSynth and loading a soundfont costs far more than rendering a clip, so
:func:`render_scores` renders many scores in one run: they are laid end to end in one MIDI file,
each in its own slot followed by silence (every channel's sound is cut at the end of its slot), and
the rendered file is sliced back into clips at the slots' sample positions.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.data.render import Score
from mirkit.errors import ConfigError
from mirkit.files import cache_dir as mirkit_cache

PACKAGE = "fluidsynth"
_TICKS_PER_BEAT = 960  # at 120 BPM (the MIDI default): one tick is 1/1920 s
_TICKS_PER_S = 2 * _TICKS_PER_BEAT
_GAP_S = 3.0  # silence after each clip's slot: longer than the default reverb's tail
HOW_TO_GET = ("install it (`apt-get install fluidsynth`) or let mirkit fetch it: it needs `apt-get` and "
              "`dpkg-deb` and access to Debian's archive")


@dataclass(frozen=True)
class Program:
    """A runnable ``fluidsynth``: the executable and the environment it needs."""

    path: Path
    env: dict[str, str]

    def version(self) -> str:
        result = subprocess.run([str(self.path), "--version"], env=self.env, capture_output=True, text=True)
        first = result.stdout.strip().splitlines()[:1]
        return first[0] if result.returncode == 0 and first else f"unknown ({result.stderr.strip()[:80]})"


def cache_dir() -> Path:
    return mirkit_cache("fluidsynth")


def _cached_program() -> Program | None:
    root = cache_dir()
    path = root / "usr" / "bin" / "fluidsynth"
    if not path.is_file():
        return None
    libs = [str(p) for p in (root / "usr" / "lib" / "x86_64-linux-gnu", root / "usr" / "lib") if p.is_dir()]
    libs += [str(p) for p in (root / "usr" / "lib").rglob("pulseaudio")] if (root / "usr" / "lib").is_dir() else []
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libs + [env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH") else libs)
    return Program(path, env)


def locate() -> Program | None:
    """The ``fluidsynth`` on ``PATH``, else the one fetched into the cache, if it runs; else ``None``."""
    found = shutil.which("fluidsynth")
    candidates = ([Program(Path(found), dict(os.environ))] if found else []) + [p for p in [_cached_program()] if p]
    for program in candidates:
        try:
            if subprocess.run([str(program.path), "--version"], env=program.env, capture_output=True,
                              timeout=30).returncode == 0:
                return program
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


def ensure(status: dict[str, str]) -> Program | None:
    """Find fluidsynth, or fetch it and the libraries this machine lacks from Debian's archive into the
    cache (no system install). Writes what happened to ``status["fluidsynth"]``."""
    program = locate()
    if program is not None:
        status["fluidsynth"] = f"present ({program.path}; {program.version()})"
        return program
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        status["fluidsynth"] = f"unavailable: apt-get/dpkg-deb not on this machine; {HOW_TO_GET}"
        return None
    # what installing would add to this machine: the program and only the libraries it lacks
    plan = subprocess.run(["apt-get", "install", "-s", "--no-install-recommends", PACKAGE], capture_output=True, text=True)
    packages = [line.split()[1] for line in plan.stdout.splitlines() if line.startswith("Inst ")]
    if plan.returncode != 0 or PACKAGE not in packages:
        status["fluidsynth"] = f"unavailable: apt-get cannot plan {PACKAGE} ({plan.stderr.strip()[:120]})"
        return None
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(["apt-get", "download", *packages], cwd=tmp, capture_output=True, text=True)
        debs = sorted(Path(tmp).glob("*.deb"))
        if result.returncode != 0 or len(debs) < len(packages):
            status["fluidsynth"] = f"unavailable: apt-get download failed ({result.stderr.strip()[:120]})"
            return None
        staging = cache_dir().with_name(f".fluidsynth.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True)
        shutil.rmtree(cache_dir(), ignore_errors=True)
        os.replace(staging, cache_dir())
    program = locate()
    if program is None:
        status["fluidsynth"] = f"unavailable: the fetched {PACKAGE} does not run on this machine"
        return None
    status["fluidsynth"] = f"fetched from Debian ({program.path}; {program.version()})"
    return program


def require() -> Program:
    """:func:`ensure`, or a :class:`ConfigError` that says how to get fluidsynth."""
    status: dict[str, str] = {}
    program = ensure(status)
    if program is None:
        raise ConfigError(f"the fluidsynth renderer is not available ({status['fluidsynth']}).")
    return program


def slots_s(scores: list[Score]) -> list[float]:
    """Start of each score's slot in the combined MIDI file (whole seconds)."""
    starts, position = [], 0.0
    for score in scores:
        starts.append(position)
        position += math.ceil(score.duration_s) + _GAP_S
    return starts


def write_midi(scores: list[Score], path: Path) -> list[float]:
    """Lay ``scores`` end to end in one type-0 MIDI file; returns the slot starts in seconds."""
    import mido

    starts = slots_s(scores)
    events: list[tuple[int, int, mido.Message]] = []  # (tick, order, message): at one tick, cut < program < off < on
    for start, score in zip(starts, scores):
        base = int(round(start * _TICKS_PER_S))
        for channel, program in score.programs.items():
            if channel != 9:
                events.append((base, 1, mido.Message("program_change", channel=channel, program=int(program))))
        for note in score.notes:
            on = base + int(round(note.start_s * _TICKS_PER_S))
            off = max(on + 1, base + int(round(note.end_s * _TICKS_PER_S)))
            events.append((on, 3, mido.Message("note_on", channel=note.channel, note=note.pitch, velocity=note.velocity)))
            events.append((off, 2, mido.Message("note_off", channel=note.channel, note=note.pitch, velocity=0)))
        end = base + int(round(score.duration_s * _TICKS_PER_S))
        for channel in range(16):  # all sound off, then reset controllers: nothing rings into the next slot
            events.append((end, 0, mido.Message("control_change", channel=channel, control=120, value=0)))
            events.append((end, 0, mido.Message("control_change", channel=channel, control=121, value=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0)])
    last = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - last))
        last = tick
    last_slot = int(round((starts[-1] + math.ceil(scores[-1].duration_s) + _GAP_S) * _TICKS_PER_S)) if scores else 0
    track.append(mido.MetaMessage("end_of_track", time=max(0, last_slot - last)))
    midi = mido.MidiFile(type=0, ticks_per_beat=_TICKS_PER_BEAT)
    midi.tracks.append(track)
    midi.save(str(path))
    return starts


def render_scores(scores: list[Score], *, soundfont: str | Path, sample_rate: int,
                  program: Program | None = None) -> list[np.ndarray]:
    """Render ``scores`` with fluidsynth and ``soundfont`` in one run; mono float32 per score, each
    ``duration_s`` long (its sound is cut at the end, as tinysoundfont's renders are)."""
    import soundfile as sf

    if not scores:
        return []
    program = program or require()
    with tempfile.TemporaryDirectory(prefix="mirkit-fluidsynth-") as tmp:
        midi_path, wav_path = Path(tmp) / "scores.mid", Path(tmp) / "out.wav"
        starts = write_midi(scores, midi_path)
        command = [str(program.path), "-n", "-i", "-q", "-F", str(wav_path), "-r", str(sample_rate), "-T", "wav",
                   "-O", "float", "-g", "0.5", "-o", "synth.polyphony=512", str(soundfont), str(midi_path)]
        result = subprocess.run(command, env=program.env, capture_output=True, text=True)
        if result.returncode != 0 or not wav_path.is_file():
            raise RuntimeError(f"fluidsynth failed on {len(scores)} scores with {soundfont} (exit {result.returncode}): "
                               f"{(result.stderr or result.stdout).strip()[-300:]}")
        audio, rate = sf.read(wav_path, dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, asked for {sample_rate} Hz")
    mono = audio.mean(axis=1)
    clips = []
    for start, score in zip(starts, scores):
        first, count = int(round(start * sample_rate)), int(round(score.duration_s * sample_rate))
        clip = np.zeros(count, dtype=np.float32)
        piece = mono[first : first + count]
        clip[: piece.size] = piece
        clips.append(clip)
    return clips
