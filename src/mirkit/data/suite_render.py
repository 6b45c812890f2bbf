"""Rendering a planned suite: renderer and variation per clip, worker processes, files and sidecars.

Each clip gets a renderer (tinysoundfont, or FluidSynth for about half of the train and validation
clips when both are asked for; test clips always tinysoundfont with the unseen soundfont) and, with
``variation`` on, a level, spectral tilt and room; both are pure functions of the suite seed and the
clip name. tinysoundfont clips are rendered one by one, FluidSynth clips in batches of one program
run (:mod:`mirkit.data.fluidsynth`). Sidecars are written before the audio file, which marks a clip
as done, so an interrupted build resumes where it stopped. Test clips keep their score as
``NAME.score.json`` so that a test split can be re-rendered another way (``mirkit robustness``'s
``renderer-fluidsynth``).
"""

from __future__ import annotations

import io
import json
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from mirkit.data import soundfonts as sf_lib
from mirkit.data.harmony import note_list, piano_roll
from mirkit.data.manifest import file_sha256
from mirkit.data.render import RENDER_SAMPLE_RATE, score_to_dict
from mirkit.errors import ConfigError
from mirkit.files import atomic_write_bytes

RENDERERS = ("tinysoundfont", "fluidsynth")
#: what ``variation="on"`` applies to every train and validation clip (drawn per clip; the test split
#: keeps its plain rendering at -6 dBFS peak)
VARIATION = {"peak_dbfs": (-30.0, -1.0), "tilt_db_per_octave": (-2.0, 2.0), "room_share": 0.5,
             "room_rt60_s": (0.1, 0.8), "room_wet": (0.05, 0.35)}
TEST_PEAK = 0.5  # -6 dBFS
_FLUIDSYNTH_BATCH = 128  # clips per FluidSynth run (its start and soundfont load cost ~1-5 s)
_TINY_BATCH = 16
_SYNTHS: dict[str, object] = {}


def choose_renderers(request: str, status: dict[str, str]) -> list[str]:
    """``auto`` (tinysoundfont, plus FluidSynth when it is on the machine or can be fetched) or a comma list."""
    from mirkit.data import fluidsynth

    if request == "auto":
        return ["tinysoundfont"] + (["fluidsynth"] if fluidsynth.ensure(status) else [])
    names = [n.strip() for n in request.split(",") if n.strip()]
    unknown = [n for n in names if n not in RENDERERS]
    if unknown or not names:
        raise ConfigError(f"renderers={request!r}: unknown {unknown or 'empty list'}; expected 'auto' or a comma "
                          f"list of {list(RENDERERS)} (e.g. tinysoundfont,fluidsynth).")
    if "tinysoundfont" not in names:
        raise ConfigError(f"renderers={request!r} must include tinysoundfont: the test split is always rendered "
                          "with it (add tinysoundfont, e.g. --renderers tinysoundfont,fluidsynth).")
    if "fluidsynth" in names and fluidsynth.ensure(status) is None:
        raise ConfigError(f"--renderers asks for fluidsynth, which is {status['fluidsynth']}. Leave it out "
                          "(--renderers tinysoundfont) or use --renderers auto.")
    return names


def draw_renderer(name: str, *, seed: int, renderers: list[str]) -> str:
    """The renderer of one train or validation clip: uniform over ``renderers``, a pure function of seed and name."""
    if len(renderers) == 1:
        return renderers[0]
    rng = np.random.default_rng([seed, zlib.crc32(f"renderer\0{name}".encode())])
    return renderers[int(rng.integers(len(renderers)))]


def draw_variation(name: str, *, seed: int) -> dict[str, float]:
    """The level, spectral tilt and room of one clip, a pure function of the suite seed and the clip name."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    v = VARIATION
    drawn = {"peak_dbfs": round(float(rng.uniform(*v["peak_dbfs"])), 2),  # type: ignore[misc]
             "tilt_db_per_octave": round(float(rng.uniform(*v["tilt_db_per_octave"])), 2)}  # type: ignore[misc]
    if rng.random() < v["room_share"]:  # type: ignore[operator]
        drawn["room_rt60_s"] = round(float(rng.uniform(*v["room_rt60_s"])), 3)  # type: ignore[misc]
        drawn["room_wet"] = round(float(rng.uniform(*v["room_wet"])), 3)  # type: ignore[misc]
        drawn["room_seed"] = int(rng.integers(0, 2**31))
    return drawn


def shape_variation(audio: np.ndarray, variation: dict[str, float], *, sample_rate: int) -> np.ndarray:
    """The linear part of ``variation``: tilt, then room (the same impulse response on every call)."""
    from mirkit.audio import effects

    out = effects.tilt(audio, sample_rate, db_per_octave=float(variation["tilt_db_per_octave"]))
    if "room_rt60_s" in variation:
        out = effects.room(out, sample_rate, np.random.default_rng(int(variation["room_seed"])),
                           rt60_s=float(variation["room_rt60_s"]), wet=float(variation["room_wet"]))
    return out


def apply_variation(audio: np.ndarray, variation: dict[str, float], *, sample_rate: int) -> np.ndarray:
    """Tilt, then room, then the peak level of ``variation`` (see :func:`draw_variation`)."""
    out = shape_variation(audio, variation, sample_rate=sample_rate)
    peak = float(np.abs(out).max())
    return out * (10 ** (variation["peak_dbfs"] / 20) / peak) if peak > 0 else out


def audio_path(job: dict, out_dir: str | Path) -> Path:
    return Path(out_dir) / job["task"] / "audio" / f"{job['name']}.flac"


def _render_unit(jobs: list[dict], out_dir: str) -> list[tuple[str, float, str]]:
    """Worker: render the jobs of one unit (one renderer and soundfont) that are not done yet; returns
    ``(path, duration_s, sha256)`` per job, in order."""
    from mirkit.data.stems import stem_scores

    todo = [job for job in jobs if not audio_path(job, out_dir).is_file()]
    if todo:
        renderer, soundfont = todo[0].get("renderer", "tinysoundfont"), todo[0]["soundfont"]
        scores = [stem_scores(job["score"]) if job.get("stems") else [job["score"]] for job in todo]
        flat = [score for parts in scores for score in parts]  # a separation clip: one score per stem
        if renderer == "fluidsynth":
            from mirkit.data.fluidsynth import render_scores

            audios = render_scores(flat, soundfont=sf_lib.locate(soundfont), sample_rate=RENDER_SAMPLE_RATE)
        else:
            from mirkit.data.render import Renderer

            if soundfont not in _SYNTHS:
                _SYNTHS[soundfont] = Renderer(sf_lib.locate(soundfont), sample_rate=RENDER_SAMPLE_RATE)
            audios = [_SYNTHS[soundfont].render(score) for score in flat]  # type: ignore[attr-defined]
        start = 0
        for job, parts in zip(todo, scores):
            rendered, start = audios[start : start + len(parts)], start + len(parts)
            if job.get("stems"):
                _write_stems(job, rendered, out_dir)
            else:
                _write_clip(job, rendered[0], out_dir)
    return [(str(audio_path(job, out_dir)), job["score"].duration_s, file_sha256(audio_path(job, out_dir)))
            for job in jobs]


def _write_stems(job: dict, stems: list[np.ndarray], out_dir: str) -> None:
    """A separation clip: its stems (shaped like the clip, one gain for all) as sidecars, then the mix."""
    import soundfile as sf

    from mirkit.data.stems import STEMS, mix_stems

    variation = job.get("variation")
    peak = 10 ** (variation["peak_dbfs"] / 20) if variation else TEST_PEAK
    shape = (lambda s: shape_variation(s, variation, sample_rate=RENDER_SAMPLE_RATE)) if variation else None
    mix, shaped = mix_stems(stems, peak=peak, shape=shape)
    path = audio_path(job, out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    for name, stem in zip(STEMS, shaped):
        target = path.with_name(f"{job['name']}.{name}.flac")
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        sf.write(tmp, np.clip(stem, -1.0, 1.0), RENDER_SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        os.replace(tmp, target)
    _write_clip(job, mix, out_dir, level=False)


def _write_clip(job: dict, audio: np.ndarray, out_dir: str, *, level: bool = True) -> None:
    """Write one clip (and its sidecars); ``level``: bring it to its peak level and variation (stems
    have had theirs)."""
    import soundfile as sf

    path = audio_path(job, out_dir)
    if level:
        peak = float(np.abs(audio).max())
        if peak > 0:
            audio = audio * (TEST_PEAK / peak)
        if job.get("variation"):
            audio = apply_variation(audio, job["variation"], sample_rate=RENDER_SAMPLE_RATE)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    sf.write(tmp, audio, RENDER_SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    # sidecars first: the audio file is the done-marker
    if job["split"] == "test":
        atomic_write_bytes(path.with_suffix(".score.json"), json.dumps({"soundfont": job["soundfont"], **score_to_dict(job["score"])}).encode())
    if job["task"] == "transcription":
        notes = note_list(job["score"])
        atomic_write_bytes(path.with_name(f"{job['name']}.notes.json"), json.dumps(notes).encode())
        buffer = io.BytesIO()
        np.savez_compressed(buffer, roll=piano_roll(notes, duration_s=job["score"].duration_s), fps=100)
        atomic_write_bytes(path.with_name(f"{job['name']}.roll.npz"), buffer.getvalue())
    os.replace(tmp, path)


def units(jobs: list[dict]) -> list[list[dict]]:
    """Jobs grouped by (renderer, soundfont) in batches: FluidSynth's large, tinysoundfont's small."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for job in jobs:
        groups.setdefault((job.get("renderer", "tinysoundfont"), job["soundfont"]), []).append(job)
    out = []
    for (renderer, _), group in groups.items():
        size = _FLUIDSYNTH_BATCH if renderer == "fluidsynth" else _TINY_BATCH
        out += [group[i : i + size] for i in range(0, len(group), size)]
    return out


def render_jobs(jobs: list[dict], out_dir: Path, *, workers: int, progress: bool,
                desc: str) -> dict[int, tuple[str, float, str]]:
    """Render every job (those already on disk are kept); ``{id(job): (path, duration_s, sha256)}``."""
    from concurrent.futures import as_completed

    from tqdm.auto import tqdm

    results: dict[int, tuple[str, float, str]] = {}
    batches = units(jobs)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        bar = tqdm(total=len(jobs), unit="clip", desc=desc, disable=not progress or None)
        futures = {pool.submit(_render_unit, batch, str(out_dir)): batch for batch in batches}
        for future in as_completed(futures):
            for job, result in zip(futures[future], future.result()):
                results[id(job)] = result
            bar.update(len(futures[future]))
        bar.close()
    return results
