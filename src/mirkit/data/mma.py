"""Grooves from MMA (Musical MIDI Accompaniment, Bob van der Poel; GPL-2.0-or-later) for the ``genre``,
``tagging`` and ``tempo`` tasks, when MMA is on the machine or can be fetched from Debian's archive.

MMA is run as a separate program (never imported or linked): mirkit writes a song file naming a
groove of its standard library, a tempo and a chord progression, and reads back the MIDI file it
writes. Many pieces go into one song file (MMA starts in ~0.5 s); each piece opens with its own
``Tempo``, and the tempo changes in the MIDI mark where each piece starts. Labels come from that
MIDI, not from the request: the BPM is the tempo MMA wrote (it rounds to whole BPM), instrument
families from the General MIDI programs it used. ``RndSeed`` makes MMA's randomised patterns
repeatable. Style families map to groove names below; each family has several grooves.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mirkit.data.annotations import beat_grid
from mirkit.data.music import PROGRESSIONS, triad
from mirkit.data.render import Score
from mirkit.files import cache_dir as mirkit_cache
from mirkit.kinds.labels import PITCH_NAMES

#: style family -> grooves of MMA's standard library (the genre task's vocabulary is the families).
FAMILIES: dict[str, tuple[str, ...]] = {
    "rock": ("50sRock", "50sRock1", "60sRock", "60sRock1", "8Beat", "8Beat1", "BasicRock", "BasicRock4",
             "BubbleRock", "SoftRock", "SoftRock1", "SoftRock2", "FolkRock"),
    "swing": ("Swing", "Swing1", "Swing2", "EasySwing", "EasySwing1", "EasySwing2", "FastSwing", "JazzCombo",
              "JazzCombo1", "BigBand", "BigBand1"),
    "bossa": ("BossaNova", "BossaNovaPlus", "BossaNovaSus", "BossaNova1Sus", "BossaNova2Sus", "BossaNova3Sus"),
    "waltz": ("Waltz", "Waltz1", "FastWaltz", "CountryWaltz", "CountryWaltz1", "CountryWaltz2", "FrenchWaltz",
              "FrenchWaltz1", "VieneseWaltz", "VieneseWaltz1", "JazzWaltz", "JazzWaltz1"),
    "march": ("March", "March1", "March2", "March3", "March4", "BWMarch", "DixieMarch", "68March"),
    "ballad": ("Ballad", "Ballad1", "PopBallad", "PopBallad1", "PianoBallad", "PianoBallad1", "RockBallad",
               "RockBallad1", "StringBallad", "GuitarBallad", "GuitarBallad1"),
    "funk": ("BVFunk", "BVFunkHorns", "DSoul", "Strut", "Strut2"),
    "reggae": ("Ska", "Ska1", "SkaClap"),
}
#: typical tempo range per family (BPM), for the genre task
FAMILY_BPM = {"rock": (100, 150), "swing": (110, 200), "bossa": (110, 150), "waltz": (90, 180), "march": (100, 130),
              "ballad": (60, 85), "funk": (90, 115), "reggae": (70, 110)}
_QUALITY = {(4, 7): "", (3, 7): "m", (3, 6): "dim", (4, 8): "aug"}
_PIECES_PER_CALL = 40


@dataclass(frozen=True)
class MmaPiece:
    groove: str
    bpm: int  # MMA writes whole BPM
    tonic: int
    mode: str
    degrees: tuple[int, ...]
    bars: int


def cache_dir() -> Path:
    return mirkit_cache("mma")


def locate() -> Path | None:
    """MMA's home (the folder holding ``MMA/`` and ``lib/``) with its groove database built, or ``None``."""
    for home in (cache_dir() / "usr" / "share" / "mma", Path("/usr/share/mma"), Path("/usr/local/share/mma")):
        if (home / "MMA").is_dir() and (home / "lib" / "stdlib" / ".mmaDB").is_file() and _script(home):
            return home
    return None


def _script(home: Path) -> Path | None:
    for candidate in (home.parent.parent / "bin" / "mma", Path("/usr/bin/mma")):
        if candidate.is_file():
            return candidate
    return None


def ensure(status: dict[str, str]) -> Path | None:
    """Find MMA, or fetch the Debian package into the cache (no system install) and build its groove database."""
    home = locate()
    if home is not None:
        status["mma"] = f"present ({home})"
        return home
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        status["mma"] = "unavailable: apt-get/dpkg-deb not on this machine (grooves from mirkit's templates)"
        return None
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(["apt-get", "download", "mma"], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("*.deb"))
        if result.returncode != 0 or not debs:
            status["mma"] = f"unavailable: apt-get download mma failed ({result.stderr.strip()[:120]})"
            return None
        cache_dir().mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(cache_dir())], check=True)
    home = cache_dir() / "usr" / "share" / "mma"
    script = _script(home)
    if script is None:
        status["mma"] = "unavailable: the mma package held no mma script"
        return None
    built = subprocess.run([sys.executable, str(script), "-G"], env={**os.environ, "MMA_HOME": str(home)},
                           capture_output=True, text=True)
    if built.returncode != 0 or locate() is None:
        status["mma"] = f"unavailable: building MMA's groove database failed ({built.stdout[-200:]})"
        return None
    status["mma"] = f"fetched from Debian ({home})"
    return home


def chord_name(pcs: list[int]) -> str:
    """Root-position triad pitch classes -> an MMA chord symbol (``C``, ``F#m``, ``Bdim``)."""
    root = pcs[0] % 12
    quality = _QUALITY.get(((pcs[1] - root) % 12, (pcs[2] - root) % 12), "")
    return PITCH_NAMES[root] + quality


def plan_piece(rng: random.Random, *, family: str, bpm: float, duration_s: float) -> MmaPiece:
    groove = rng.choice(FAMILIES[family])
    mode = rng.choice(("major", "minor"))
    bars = math.ceil(duration_s * bpm / 60 / 3) + 1  # enough bars for the clip even in 3/4
    return MmaPiece(groove, int(round(bpm)), rng.randrange(12), mode, tuple(rng.choice(PROGRESSIONS[mode])), bars)


def render_pieces(pieces: list[MmaPiece], *, home: Path, duration_s: float,
                  seed: int) -> list[tuple[Score, float, int]]:
    """Run MMA on ``pieces`` (songs of 40, one MMA process per core); returns ``(score cut to duration_s,
    BPM written, quarter-note beats per bar of the time signature written)`` per piece, in order."""
    from concurrent.futures import ThreadPoolExecutor

    starts = range(0, len(pieces), _PIECES_PER_CALL)
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:  # threads wait on processes
        songs = pool.map(lambda start: _render_call(pieces[start : start + _PIECES_PER_CALL], home=home,
                                                    duration_s=duration_s, seed=seed + start), starts)
        return [piece for song in songs for piece in song]


def _render_call(pieces: list[MmaPiece], *, home: Path, duration_s: float,
                 seed: int) -> list[tuple[Score, float, int]]:
    import pretty_midi

    lines, bar = [f"RndSeed {seed}"], 1
    previous = None
    for piece in pieces:
        bpm = piece.bpm if piece.bpm != previous else piece.bpm + 1  # a tempo change marks every piece's start
        previous = bpm
        lines += [f"Tempo {bpm}", f"Groove {piece.groove}"]
        for k in range(piece.bars):
            lines.append(f"{bar} {chord_name(triad(piece.tonic, piece.mode, piece.degrees[k % len(piece.degrees)]))}")
            bar += 1
    with tempfile.TemporaryDirectory() as tmp:
        song, midi = Path(tmp) / "song.mma", Path(tmp) / "song.mid"
        song.write_text("\n".join(lines) + "\n")
        script = _script(home)  # -m: MMA refuses songs of more than 500 bars unless told the count
        result = subprocess.run([sys.executable, str(script), str(song), "-f", str(midi), "-m", str(bar + 1)],
                                env={**os.environ, "MMA_HOME": str(home)}, capture_output=True, text=True)
        if result.returncode != 0 or not midi.is_file():
            raise RuntimeError(f"MMA failed on a song of {len(pieces)} pieces: {result.stdout[-300:]}")
        data = pretty_midi.PrettyMIDI(str(midi))
    starts, tempi = data.get_tempo_changes()
    if len(starts) != len(pieces):
        raise RuntimeError(f"MMA wrote {len(starts)} tempo changes for {len(pieces)} pieces; cannot cut the pieces.")
    ends = list(starts[1:]) + [data.get_end_time()]
    signatures = sorted(data.time_signature_changes, key=lambda ts: ts.time)
    out = []
    for t0, t1, bpm in zip(starts, ends, tempi):
        current = [ts for ts in signatures if ts.time <= t0 + 1e-3]
        numerator, denominator = (current[-1].numerator, current[-1].denominator) if current else (4, 4)
        beats_per_bar = max(1, round(numerator * 4 / denominator))  # 3/4 -> 3, 6/8 -> 3 quarter notes
        score = Score(duration_s=min(duration_s, t1 - t0))
        channels: dict[tuple[int, bool], int] = {}
        for instrument in data.instruments:
            notes = [n for n in instrument.notes if t0 <= n.start < t1]
            if not notes:
                continue
            key = (int(instrument.program), bool(instrument.is_drum))
            if key not in channels:
                free = [c for c in range(16) if c != 9 and c not in channels.values()]
                channels[key] = 9 if instrument.is_drum else free[0]
                score.programs[channels[key]] = 0 if instrument.is_drum else int(instrument.program)
            for note in notes:
                score.add(channels[key], note.pitch, note.start - t0, min(note.end, t1) - note.start, note.velocity)
        out.append((score, float(bpm), beats_per_bar))
    return out


#: non-drum notes per second above which a piece is tagged ``dense``
DENSE_NOTES_PER_S = 6.0


def plan_mma_grooves(*, pieces: int, duration_s: float, train_soundfonts: list[str], test_soundfont: str, seed: int,
                     home: Path, tempo_range: tuple[float, float] | None = None, task: str,
                     offset: int = 0) -> list[dict]:
    """Jobs like :func:`mirkit.data.grooves.plan_grooves`, rendered by MMA (one clip per piece, split 70/15/15)."""
    from mirkit.data.grooves import _family, tempo_class
    from mirkit.data.manifest import stratified_splits

    rng = random.Random(seed)
    families = list(FAMILIES)
    names = [families[i % len(families)] for i in range(pieces)]
    splits = stratified_splits(names, seed=seed)
    plans = []
    for family in names:
        if tempo_range:  # log-uniform, so every octave is equally represented
            bpm = math.exp(rng.uniform(math.log(tempo_range[0]), math.log(tempo_range[1])))
        else:
            bpm = rng.uniform(*FAMILY_BPM[family])
        plans.append(plan_piece(rng, family=family, bpm=bpm, duration_s=duration_s))
    rendered = render_pieces(plans, home=home, duration_s=duration_s, seed=seed)
    jobs = []
    for index, (family, piece, (score, bpm, beats_per_bar)) in enumerate(zip(names, plans, rendered)):
        split = splits[index]
        soundfont = test_soundfont if split == "test" else train_soundfonts[index % len(train_soundfonts)]
        melodic = [n for n in score.notes if n.channel != 9]
        found = sorted({_family(p) for c, p in score.programs.items() if c != 9})
        dense = len(melodic) / max(score.duration_s, 1e-6) >= DENSE_NOTES_PER_S
        tags = [family, *found, *(["drums"] if 9 in score.programs else []), piece.mode, tempo_class(bpm),
                "dense" if dense else "sparse"]
        facts = {"style": family, "groove": piece.groove, "bpm": round(bpm, 3), "mode": piece.mode,
                 "tonic": piece.tonic, "progression": list(piece.degrees),
                 "programs": {str(k): v for k, v in score.programs.items()}, "families": found, "dense": dense}
        number = offset + index
        jobs.append({"name": f"{task}-{number:05d}-{family}", "score": score, "soundfont": soundfont, "split": split,
                     "piece": f"{task}-{number:05d}",
                     "labels": {"bpm": facts["bpm"], "genre": family, "tags": sorted(set(tags)),
                                **beat_grid(bpm=bpm, beats_per_bar=beats_per_bar, duration_s=score.duration_s)},
                     "facts": facts, "source": f"mma:{piece.groove}"})
    return jobs
