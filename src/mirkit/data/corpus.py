"""``mirkit data corpus``: unlabelled music for pretraining, gathered offline, with provenance.

Sources (``--sources``):

- ``music21``: works of music21's corpus rendered with varied General MIDI ensembles over the
  suite's *training* soundfonts (never its test soundfont): Palestrina, Monteverdi, the Trecento
  collection, Beethoven, Mozart, Haydn, Josquin, ... and the Chinese collections of the Essen corpus.
  Left out on purpose: the Bach chorales and the European Essen collections (the suite's key task
  renders them, so a test piece could leak) and O'Neill's 1850, Ryan's Mammoth and Aird's Airs (and
  the Essen Irish songs), which are reserved for evaluation.
- ``debian``: the music packages of Debian's archive (``mirkit data music``'s list) except the
  Fretsonfire songs, which are test-only real recordings.
- ``--add DIR``: your own audio files (licence recorded as ``user-supplied``).

Every piece is decoded or rendered to mono 24 kHz, checked (long enough, not silent), hashed (a
piece whose audio equals an earlier one is dropped as a duplicate) and stored as Ogg Vorbis chunks
of at most 30 s (decoded whole by the loader, as mirkit always decodes). ``corpus.jsonl`` lists
every chunk with its path, duration, source, piece id, licence and content hash; ``corpus.json``
sums it up; ``skipped.jsonl`` says why a piece was left out. Work is done per piece in worker
processes and recorded per piece, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import re
import tempfile
import time
import warnings
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.errors import AudioError, ConfigError
from mirkit.files import append_jsonl, atomic_write_json, read_jsonl, sha256_text, write_jsonl

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
CHUNK_S = 30.0
MIN_PIECE_S = 2.0
MAX_RENDER_S = 600.0
VORBIS_LEVEL = 0.5  # libsndfile's compression level: 0 best quality, 1 smallest
SOURCES = ("music21", "debian")
#: music21 corpus folders the corpus renders (composers and collections the suite never uses)
MUSIC21_FOLDERS = ("palestrina", "monteverdi", "trecento", "beethoven", "mozart", "haydn", "handel", "corelli",
                   "josquin", "schubert", "joplin", "ciconia", "luca", "cpebach", "schumann_robert", "schumann_clara",
                   "chopin", "verdi", "weber", "beach", "johnson_j_r", "liliuokalani", "lusitano", "miscFolk")
ESSEN_COLLECTIONS = ("han1", "han2")
#: never rendered, and why (checked by the tests)
EXCLUDED_MUSIC21 = {"bach": "the key task's Bach chorales", "airdsAirs": "reserved for evaluation",
                    "oneills1850": "reserved for evaluation", "ryansMammoth": "reserved for evaluation",
                    "essenFolksong/irl": "Irish songs, kept out with the reserved collections",
                    "essenFolksong/<European collections>": "the key task's folk songs"}
ENSEMBLES = ((52, 52, 53, 52, 53, 52), (48, 48, 42, 43, 49, 48), (19, 20, 19, 19, 20, 19), (56, 57, 60, 58, 61, 57),
             (73, 68, 71, 70, 74, 69), (0, 0, 0, 0, 1, 0), (24, 25, 32, 33, 24, 27), (40, 41, 42, 43, 40, 41))
SCORE_SUFFIXES = (".krn", ".mxl", ".xml", ".musicxml", ".mid", ".midi", ".abc", ".md", ".capx", ".rntxt")


@dataclass(frozen=True)
class CorpusJob:
    """One piece to render or decode. ``text`` holds ABC for Essen songs (one file holds many)."""

    source: str
    piece: str
    path: str
    licence: str
    kind: str  # score | audio
    text: str = ""

    @property
    def key(self) -> str:
        return sha256_text(self.piece)[:20]


def _music21_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


ESSEN_LICENCE = ("Essen folksong database, distributed with music21 for non-commercial use "
                 "(music21/corpus/essenFolksong/license.txt); rendered by mirkit")


def score_licence(path: Path) -> str:
    """What a score file says about its licence: a Humdrum file's ``!!!YEM`` lines, else music21's corpus
    notice (the works are out of copyright or licensed to music21; some encodings restrict commercial use)."""
    notes = []
    if path.suffix.lower() == ".krn":
        with open(path, encoding="latin-1", errors="replace") as handle:
            notes = [line[7:].strip() for line in handle if line.startswith("!!!YEM:")]
    if notes:
        return "encoding: " + " ".join(notes) + "; rendered by mirkit"
    return ("music21 corpus encoding (music21/corpus/license.txt: out of copyright or licensed for use, some with "
            "non-commercial restrictions); rendered by mirkit")


def music21_jobs() -> list[CorpusJob]:
    root = _music21_root()
    jobs = []
    for folder in MUSIC21_FOLDERS:
        for path in sorted((root / folder).rglob("*")) if (root / folder).is_dir() else ():
            if path.suffix.lower() in SCORE_SUFFIXES and path.is_file():
                jobs.append(CorpusJob("music21", f"music21:{path.relative_to(root).as_posix()}", str(path),
                                      score_licence(path), "score"))
    for stem in ESSEN_COLLECTIONS:
        path = root / "essenFolksong" / f"{stem}.abc"
        if not path.is_file():
            continue
        for block in re.split(r"\n(?=X:)", path.read_text(encoding="latin-1")):
            match = re.match(r"X:\s*(\d+)", block)
            if match:
                jobs.append(CorpusJob("music21", f"music21:essenFolksong/{stem}:{match.group(1)}", str(path),
                                      ESSEN_LICENCE, "score", text=block))
    return jobs


def debian_jobs(folder: Path, packages: list[str]) -> tuple[list[CorpusJob], dict[str, str]]:
    from mirkit.data.library import gather_music

    refused = [p for p in packages if p.startswith("fretsonfire")]
    if refused:
        raise ConfigError(f"{', '.join(refused)}: the Fretsonfire songs are test-only real recordings and never "
                          "enter a pretraining corpus; leave them out of --packages.")
    summary = gather_music(out_dir=folder, packages=packages)
    rows = read_jsonl(folder / "library.jsonl")
    return ([CorpusJob("debian", f"debian:{row['path']}", str(folder / row["path"]), str(row["licence"]), "audio")
             for row in rows], summary.get("status", {}))  # type: ignore[return-value]


def user_jobs(folder: Path) -> list[CorpusJob]:
    from mirkit.features.inputs import scan_inputs

    if not folder.is_dir():
        raise ConfigError(f"--add {folder}: not a folder; pass a folder of your own audio files.")
    paths, _ = scan_inputs(folder)
    return [CorpusJob("user", f"user:{Path(p).resolve()}", p, "user-supplied", "audio") for p in paths]


def plan(*, sources: list[str], packages: list[str], music_dir: Path, add: list[Path], seed: int,
         exclude_pieces: set[str]) -> tuple[list[CorpusJob], dict[str, str]]:
    """Every job, sources interleaved (so a ``--hours`` budget gets all of them), excluded pieces dropped."""
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ConfigError(f"unknown corpus source(s) {unknown}; choose from {', '.join(SOURCES)} (and --add DIR).")
    status: dict[str, str] = {}
    lists = []
    if "music21" in sources:
        lists.append(music21_jobs())
    if "debian" in sources:
        jobs, status = debian_jobs(music_dir, packages)
        lists.append(jobs)
    lists += [user_jobs(folder) for folder in add]
    rng = random.Random(seed)
    for jobs in lists:
        rng.shuffle(jobs)
    merged = [job for group in _interleave(lists) for job in group]
    return [job for job in merged if job.piece not in exclude_pieces], status


def _interleave(lists: list[list[CorpusJob]]):
    for i in range(max((len(x) for x in lists), default=0)):
        yield [x[i] for x in lists if i < len(x)]


def suite_pieces(suite_dir: Path) -> set[str]:
    """Piece ids of every clip of a suite (``mirkit data build``), to keep out of a corpus."""
    pieces = set()
    for manifest in sorted(suite_dir.glob("*/manifest.jsonl")):
        pieces |= {str(row.get("piece")) for row in read_jsonl(manifest)}
    return pieces


# --- worker side ----------------------------------------------------------------------------------
_RENDERERS: dict[str, object] = {}


def _score_notes(job: CorpusJob):
    """``(pretty_midi.PrettyMIDI)`` of a score job (music21 parse -> MIDI)."""
    import pretty_midi
    from music21 import converter

    score = converter.parse(job.text, format="abc") if job.text else converter.parse(job.path)
    with tempfile.TemporaryDirectory() as tmp:
        midi = Path(tmp) / "piece.mid"
        score.write("midi", fp=str(midi))
        return pretty_midi.PrettyMIDI(str(midi))


def _render(job: CorpusJob, soundfonts: list[str]) -> tuple[np.ndarray, dict[str, object]]:
    from mirkit.data import soundfonts as sf_lib
    from mirkit.data.render import Renderer, Score

    with warnings.catch_warnings(record=True) as caught:  # music21 warns about overfull measures and the like
        warnings.simplefilter("always")
        midi = _score_notes(job)
    rng = random.Random(job.piece)
    ensemble, soundfont = rng.choice(ENSEMBLES), rng.choice(soundfonts)
    duration = min(MAX_RENDER_S, midi.get_end_time() + 1.0)
    score = Score(duration_s=duration)
    tracks = [i for i in midi.instruments if not i.is_drum and i.notes][:15]
    for channel, instrument in enumerate(tracks):
        channel += channel >= 9  # channel 9 is GM drums
        score.programs[channel] = ensemble[channel % len(ensemble)]
        for note in instrument.notes:
            score.add(channel, note.pitch, note.start, note.end - note.start, min(110, max(50, note.velocity)))
    if soundfont not in _RENDERERS:
        _RENDERERS[soundfont] = Renderer(sf_lib.locate(soundfont), sample_rate=SAMPLE_RATE)
    audio = _RENDERERS[soundfont].render(score)  # type: ignore[attr-defined]
    return audio, {"renderer": "tinysoundfont", "soundfont": soundfont, "programs": sorted(set(score.programs.values())),
                   **({"parser_warnings": len(caught)} if caught else {})}


@contextlib.contextmanager
def _captured_stderr():
    """Collect what C libraries write to file descriptor 2 during the block (a list of lines), so that a
    decoder's recoverable-error chatter is counted per piece instead of flooding the console."""
    lines: list[str] = []
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines += [line for line in sink.read().decode(errors="replace").splitlines() if line.strip()]


def run_job(job: CorpusJob, out_dir: str, soundfonts: list[str]) -> tuple[list[dict], dict | None]:
    """Render or decode one piece into chunks; ``(rows, None)`` or ``([], skip record)``."""
    from mirkit.audio import load

    try:
        if job.kind == "score":
            audio, rendering = _render(job, soundfonts)
        else:
            with _captured_stderr() as messages:  # libmpg123 prints recoverable frame errors straight to fd 2
                audio, _ = load(job.path, sample_rate=SAMPLE_RATE)
            rendering = {"decoded_from": Path(job.path).suffix.lower()}
            if messages:
                rendering["decoder_messages"] = len(messages)
    except AudioError as exc:
        return [], {"piece": job.piece, "reason": exc.reason, "message": str(exc)}
    except Exception as exc:  # an unparsable score: skip it, keep the build going
        return [], {"piece": job.piece, "reason": "unreadable", "message": f"{type(exc).__name__}: {exc}"[:300]}
    duration_s = len(audio) / SAMPLE_RATE
    if duration_s < MIN_PIECE_S:
        return [], {"piece": job.piece, "reason": "too_short", "message": f"{duration_s:.2f} s < {MIN_PIECE_S} s"}
    if float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) < 1e-4:
        return [], {"piece": job.piece, "reason": "silent", "message": "RMS below -80 dBFS"}
    digest = hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()
    return _write_chunks(job, audio, Path(out_dir), digest=digest, rendering=rendering), None


def _write_chunks(job: CorpusJob, audio: np.ndarray, out: Path, *, digest: str,
                  rendering: dict[str, object]) -> list[dict]:
    import soundfile as sf

    chunk = int(CHUNK_S * SAMPLE_RATE)
    starts = list(range(0, len(audio), chunk))
    if len(starts) > 1 and len(audio) - starts[-1] < MIN_PIECE_S * SAMPLE_RATE:
        starts.pop()  # a short tail joins the previous chunk
    rows = []
    folder = out / "audio" / job.source / job.key[:2]
    folder.mkdir(parents=True, exist_ok=True)
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(audio)
        path = folder / f"{job.key}-{k:03d}.ogg"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        # written in blocks: one large soundfile.write of Vorbis crashed the interpreter (shared/ASSETS.md)
        with sf.SoundFile(tmp, "w", samplerate=SAMPLE_RATE, channels=1, format="OGG", subtype="VORBIS",
                          compression_level=VORBIS_LEVEL) as handle:
            for block in range(start, end, 4096):
                handle.write(audio[block : min(end, block + 4096)])
        os.replace(tmp, path)
        rows.append({"path": path.relative_to(out).as_posix(), "duration_s": round((end - start) / SAMPLE_RATE, 3),
                     "source": job.source, "piece": job.piece, "chunk": k, "licence": job.licence,
                     "sha256": digest, "rendering": rendering})
    return rows


# --- the build ------------------------------------------------------------------------------------
def build_corpus(*, out_dir: str | Path, hours: float | None = None, sources: list[str] | None = None,
                 packages: list[str] | None = None, add: list[str | Path] | None = None, seed: int = 0,
                 exclude_suites: list[str | Path] | None = None, workers: int | None = None,
                 progress: bool = True) -> dict[str, object]:
    """Build (or continue) a corpus in ``out_dir``; returns the summary also written to ``corpus.json``."""
    from tqdm.auto import tqdm

    from mirkit.data.library import MUSIC_PACKAGES
    from mirkit.data.suite import choose_soundfonts

    if hours is not None and hours <= 0:
        raise ConfigError(f"hours={hours} must be positive (or leave it out for every piece).")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train_soundfonts, test_soundfont, _ = choose_soundfonts("auto")
    excluded = set().union(*(suite_pieces(Path(s)) for s in exclude_suites or []))
    packages = list(packages if packages is not None else [p for p in MUSIC_PACKAGES if not p.startswith("fretsonfire")])
    jobs, package_status = plan(sources=list(sources or SOURCES), packages=packages, music_dir=out / "music",
                                add=[Path(a) for a in add or []], seed=seed, exclude_pieces=excluded)
    parts = out / "parts"
    done = {p.stem for p in parts.glob("*.jsonl")} if parts.is_dir() else set()
    # a licence is the source's, not the rendering's: finished pieces take the job's current statement
    rows = [{**row, "licence": job.licence} for job in jobs if job.key in done
            for row in read_jsonl(parts / f"{job.key}.jsonl")]
    # --hours budgets the unique audio of the built-in sources; your own music (--add) is always taken whole
    seen: dict[str, str] = {}  # audio hash -> the piece counted for it
    builtin_s = 0.0
    for row in rows:
        builtin_s += _new_audio_s(row, seen)
    todo = [job for job in jobs if job.key not in done]
    budget_s = hours * 3600 if hours is not None else float("inf")
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers) as pool, \
            tqdm(total=hours, unit="h", desc="corpus", disable=not progress or None) as bar:
        pending: dict = {}
        queue = iter(todo)
        while True:
            while len(pending) < 2 * workers:
                job = next(queue, None)
                while job is not None and job.source != "user" and builtin_s >= budget_s:
                    job = next(queue, None)
                if job is None:
                    break
                pending[pool.submit(run_job, job, str(out), train_soundfonts)] = job
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                job = pending.pop(future)
                found, skip = future.result()
                if skip is not None:
                    append_jsonl(out / "skipped.jsonl", skip)
                write_jsonl(parts / f"{job.key}.jsonl", found)  # the piece's done-marker
                rows += found
                for row in found:
                    builtin_s += _new_audio_s(row, seen)
                bar.n = round(builtin_s / 3600, 2)
                bar.refresh()
    return _finish(out, jobs, rows, seed=seed, started=started, soundfonts=(train_soundfonts, test_soundfont),
                   package_status=package_status, excluded=len(excluded))


def _new_audio_s(row: dict, seen: dict[str, str]) -> float:
    """Seconds a chunk adds to the budget: none for your own music or for a copy of a counted piece's audio."""
    if row["source"] == "user" or seen.setdefault(row["sha256"], row["piece"]) != row["piece"]:
        return 0.0
    return float(row["duration_s"])


def _finish(out: Path, jobs: list[CorpusJob], rows: list[dict], *, seed: int, started: float,
            soundfonts: tuple[list[str], str], package_status: dict[str, str], excluded: int) -> dict[str, object]:
    """Drop duplicate pieces, write ``corpus.jsonl`` in job order and ``corpus.json``."""
    order = {job.piece: i for i, job in enumerate(jobs)}
    rows.sort(key=lambda r: (order.get(r["piece"], len(order)), r["chunk"]))
    first_piece: dict[str, str] = {}
    kept = []
    for row in rows:
        owner = first_piece.setdefault(row["sha256"], row["piece"])
        if owner == row["piece"]:
            kept.append(row)
    duplicates = len({r["piece"] for r in rows}) - len({r["piece"] for r in kept})
    write_jsonl(out / "corpus.jsonl", kept)
    size = sum((out / r["path"]).stat().st_size for r in kept)
    hours_by: Counter = Counter()
    for row in kept:
        hours_by[row["source"]] += row["duration_s"] / 3600
    summary = {"format_version": 1, "sample_rate": SAMPLE_RATE, "seed": seed, "pieces": len({r["piece"] for r in kept}),
               "chunks": len(kept), "hours": round(sum(hours_by.values()), 2),
               "hours_by_source": {k: round(v, 2) for k, v in sorted(hours_by.items())}, "gb": round(size / 1e9, 3),
               "licences": dict(Counter(r["licence"] for r in kept).most_common()), "duplicates_dropped": duplicates,
               "suite_pieces_excluded": excluded, "soundfonts": {"used": soundfonts[0], "never_used (suite test)":
                                                                 soundfonts[1]},
               "excluded_collections": EXCLUDED_MUSIC21, "debian_packages": package_status,
               "build_s": round(time.perf_counter() - started, 1)}
    atomic_write_json(out / "corpus.json", summary)
    return summary


__all__ = ["CorpusJob", "build_corpus", "suite_pieces"]
