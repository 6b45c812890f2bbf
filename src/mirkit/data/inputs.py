"""The external inputs a suite build depends on, recorded in ``suite.json`` under ``inputs``: the MMA
package version and its groove database's checksum, FluidSynth's version when it renders, every soundfont file's size and sha256, and the
versions of the Python packages that parse and render scores. :func:`input_differences` compares a
recorded set with this machine's, so that a rebuild that differs can say why."""

from __future__ import annotations

import gzip
import importlib.metadata
import re
from pathlib import Path

from mirkit.files import sha256_file

PACKAGES = ("music21", "pretty_midi", "tinysoundfont", "mido", "numpy", "soundfile")


def mma_version(home: Path) -> str | None:
    """The Debian package version of MMA (``21.09-1``) from its changelog, else MMA's own ``gbl.version``."""
    changelog = home.parent / "doc" / "mma" / "changelog.Debian.gz"
    if changelog.is_file():
        with gzip.open(changelog, "rt", errors="replace") as handle:
            match = re.match(r"mma \(([^)]+)\)", handle.readline())
            if match:
                return match.group(1)
    gbl = home / "MMA" / "gbl.py"
    match = re.search(r'^version\s*=\s*"([^"]+)"', gbl.read_text(errors="replace"), re.M) if gbl.is_file() else None
    return match.group(1) if match else None


def external_inputs(*, soundfonts: list[str], mma_home: Path | None, fluidsynth: bool = False) -> dict[str, object]:
    """What this build read from outside mirkit: soundfont files, MMA, FluidSynth (when it renders),
    score and audio packages."""
    from mirkit.data import soundfonts as sf_lib

    fonts = {}
    for name in soundfonts:
        path = sf_lib.locate(name)
        fonts[name] = ({"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
                       if path is not None else None)
    mma = None
    if mma_home is not None:
        database = mma_home / "lib" / "stdlib" / ".mmaDB"
        mma = {"version": mma_version(mma_home),
               "groove_database_sha256": sha256_file(database) if database.is_file() else None}
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    inputs: dict[str, object] = {"soundfonts": fonts, "mma": mma, "packages": packages}
    if fluidsynth:
        from mirkit.data.fluidsynth import locate

        program = locate()
        inputs["fluidsynth"] = program.version() if program else None
    return inputs


def input_differences(recorded: dict[str, object], current: dict[str, object]) -> list[str]:
    """Each input that differs between a suite's record and ``current``, as ``what: recorded -> current``."""
    out = []

    def walk(prefix: str, a: object, b: object) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(f"{prefix}.{key}" if prefix else str(key), a.get(key), b.get(key))
        elif a != b:
            out.append(f"{prefix}: {a} -> {b}")

    walk("", recorded, current)
    return out


__all__ = ["external_inputs", "input_differences", "mma_version"]
