"""Where soundfonts come from.

- ``timgm6mb``: TimGM6mb.sf2 inside the ``pretty_midi`` wheel (always there; GPL-2, used only to
  render data, never shipped).
- ``fluidr3``: FluidR3_GM.sf2 from Debian's ``fluid-soundfont-gm`` (MIT).
- ``musescore``: MuseScore_General_Lite.sf3 from Debian's ``musescore-general-soundfont-small`` (MIT).

The Debian ones are used when installed system-wide, or fetched with ``apt-get download`` and
unpacked with ``dpkg-deb -x`` into a cache folder (no system install) by :func:`fetch_debian`.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mirkit.files import cache_dir as mirkit_cache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SoundfontSpec:
    name: str
    filename: str
    debian_package: str | None
    licence: str


SOUNDFONTS = {
    "timgm6mb": SoundfontSpec("timgm6mb", "TimGM6mb.sf2", None, "GPL-2.0 (rendering only)"),
    "fluidr3": SoundfontSpec("fluidr3", "FluidR3_GM.sf2", "fluid-soundfont-gm", "MIT"),
    "musescore": SoundfontSpec("musescore", "MuseScore_General_Lite.sf3", "musescore-general-soundfont-small", "MIT"),
}
_SYSTEM_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"), Path("/usr/share/soundfonts"))


def cache_dir() -> Path:
    return mirkit_cache("soundfonts")


def locate(name: str) -> Path | None:
    """Path of soundfont ``name`` if it is on this machine."""
    spec = SOUNDFONTS[name]
    if name == "timgm6mb":
        found = importlib.util.find_spec("pretty_midi")
        if found and found.submodule_search_locations:
            path = Path(list(found.submodule_search_locations)[0]) / spec.filename
            return path if path.is_file() else None
        return None
    for folder in (*_SYSTEM_DIRS, cache_dir()):
        for path in folder.rglob(spec.filename) if folder.is_dir() else ():
            return path
    return None


def fetch_debian(names: list[str]) -> dict[str, str]:
    """Fetch Debian soundfont packages into the cache without installing them system-wide.

    Returns ``{name: message}`` saying what happened for each (fetched / present / unavailable).
    """
    status: dict[str, str] = {}
    apt = shutil.which("apt-get") and shutil.which("dpkg-deb")
    for name in names:
        spec = SOUNDFONTS[name]
        if locate(name) is not None:
            status[name] = f"present ({locate(name)})"
            continue
        if spec.debian_package is None:
            status[name] = "unavailable: not a Debian package"
            continue
        if not apt:
            status[name] = "unavailable: apt-get/dpkg-deb not on this machine"
            continue
        with tempfile.TemporaryDirectory() as tmp:
            result = subprocess.run(["apt-get", "download", spec.debian_package], cwd=tmp, capture_output=True, text=True)
            debs = list(Path(tmp).glob("*.deb"))
            if result.returncode != 0 or not debs:
                status[name] = f"unavailable: apt-get download {spec.debian_package} failed ({result.stderr.strip()[:120]})"
                continue
            target = cache_dir() / name
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(target)], check=True)
        status[name] = f"fetched ({locate(name)})" if locate(name) else "unavailable: package held no soundfont"
    return status
