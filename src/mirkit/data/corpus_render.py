"""The worker side of ``mirkit data corpus`` (:mod:`mirkit.data.corpus`): one job (a score, an audio
file, or a batch of MMA or generated pieces) rendered or decoded, checked, hashed and written as Ogg
Vorbis chunks, in a worker process. Module constants set the size of the pieces a worker makes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.errors import AudioError
from mirkit.files import sha256_text

SAMPLE_RATE = 24000
CHUNK_S = 30.0
MIN_PIECE_S = 2.0
MAX_RENDER_S = 600.0
VORBIS_LEVEL = 0.5  # libsndfile's compression level: 0 best quality, 1 smallest
MMA_PIECES = 40  # grooves per MMA call
MMA_PIECE_S = 90.0
GENERATED_PIECES = 40  # pieces per generated job
GENERATED_PIECE_S = (60.0, 120.0)
#: General MIDI programs of the ensembles a score is rendered with (one drawn per piece)
ENSEMBLES = ((52, 52, 53, 52, 53, 52), (48, 48, 42, 43, 49, 48), (19, 20, 19, 19, 20, 19), (56, 57, 60, 58, 61, 57),
             (73, 68, 71, 70, 74, 69), (0, 0, 0, 0, 1, 0), (24, 25, 32, 33, 24, 27), (40, 41, 42, 43, 40, 41))


@dataclass(frozen=True)
class Synthesis:
    """How rendered pieces (scores, MMA, generated) sound: soundfonts, renderers and the suite's variation.

    Per piece, a renderer is drawn from ``renderers`` and a soundfont from ``soundfonts``; with
    ``variation`` the piece then gets the suite's level, spectral tilt and (half the time) room
    (:func:`mirkit.data.suite_render.draw_variation`, a pure function of ``seed`` and the piece id).
    """

    soundfonts: tuple[str, ...]
    renderers: tuple[str, ...] = ("tinysoundfont",)
    variation: bool = False
    seed: int = 0

    def draw(self, rng: random.Random) -> tuple[str, str]:
        """``(renderer, soundfont)`` of one piece."""
        soundfont = rng.choice(self.soundfonts)
        # one renderer draws nothing, so corpora built before renderers were a choice render the same
        renderer = rng.choice(self.renderers) if len(self.renderers) > 1 else self.renderers[0]
        return renderer, soundfont

    def render(self, score, *, rng: random.Random, piece: str) -> tuple[np.ndarray, dict[str, object]]:
        """``(audio at SAMPLE_RATE, what was drawn)`` for one score."""
        return self.render_all([(score, *self.draw(rng), piece)])[0]

    def render_all(self, drawn: list[tuple[object, str, str, str]]) -> list[tuple[np.ndarray, dict[str, object]]]:
        """``(score, renderer, soundfont, piece)`` each -> ``(audio, what was drawn)``; the FluidSynth scores of
        one soundfont are rendered in one program run (its start and soundfont load cost 1-5 s)."""
        from mirkit.data import fluidsynth
        from mirkit.data import soundfonts as sf_lib

        audio: dict[int, np.ndarray] = {}
        for soundfont in sorted({s for _, r, s, _ in drawn if r == "fluidsynth"}):
            batch = [i for i, (_, r, s, _) in enumerate(drawn) if r == "fluidsynth" and s == soundfont]
            clips = fluidsynth.render_scores([drawn[i][0] for i in batch], soundfont=sf_lib.locate(soundfont),
                                             sample_rate=SAMPLE_RATE)
            audio.update(zip(batch, clips))
        out = []
        for i, (score, renderer, soundfont, piece) in enumerate(drawn):
            wave = audio[i] if i in audio else _renderer(soundfont).render(score)
            info: dict[str, object] = {"renderer": renderer, "soundfont": soundfont}
            if self.variation:
                from mirkit.data.suite_render import apply_variation, draw_variation

                variation = draw_variation(f"corpus\0{piece}", seed=self.seed)
                wave = apply_variation(wave, variation, sample_rate=SAMPLE_RATE).astype(np.float32)
                info["variation"] = variation
            out.append((wave, info))
        return out


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


_RENDERERS: dict[str, object] = {}


def _renderer(soundfont: str):
    """One tinysoundfont synthesiser per soundfont and worker process."""
    from mirkit.data import soundfonts as sf_lib
    from mirkit.data.render import Renderer

    if soundfont not in _RENDERERS:
        _RENDERERS[soundfont] = Renderer(sf_lib.locate(soundfont), sample_rate=SAMPLE_RATE)
    return _RENDERERS[soundfont]


def _audio_digest(audio: np.ndarray) -> str:
    """sha256 of the decoded or rendered float32 audio (equal audio = a duplicate piece)."""
    return hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()


def _score_notes(job: CorpusJob):
    """``(pretty_midi.PrettyMIDI)`` of a score job (music21 parse -> MIDI)."""
    import pretty_midi
    from music21 import converter

    score = converter.parse(job.text, format="abc") if job.text else converter.parse(job.path)
    with tempfile.TemporaryDirectory() as tmp:
        midi = Path(tmp) / "piece.mid"
        score.write("midi", fp=str(midi))
        return pretty_midi.PrettyMIDI(str(midi))


def _render(job: CorpusJob, synthesis: Synthesis) -> tuple[np.ndarray, dict[str, object]]:
    from mirkit.data.render import Score

    with warnings.catch_warnings(record=True) as caught:  # music21 warns about overfull measures and the like
        warnings.simplefilter("always")
        midi = _score_notes(job)
    rng = random.Random(job.piece)
    ensemble = rng.choice(ENSEMBLES)
    duration = min(MAX_RENDER_S, midi.get_end_time() + 1.0)
    score = Score(duration_s=duration)
    tracks = [i for i in midi.instruments if not i.is_drum and i.notes][:15]
    for channel, instrument in enumerate(tracks):
        channel += channel >= 9  # channel 9 is GM drums
        score.programs[channel] = ensemble[channel % len(ensemble)]
        for note in instrument.notes:
            score.add(channel, note.pitch, note.start, note.end - note.start, min(110, max(50, note.velocity)))
    audio, drawn = synthesis.render(score, rng=rng, piece=job.piece)
    return audio, {**drawn, "programs": sorted(set(score.programs.values())),
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


def _render_mma_batch(job: CorpusJob, out_dir: str, synthesis: Synthesis) -> tuple[list[dict], dict | None]:
    """One MMA call for a batch of grooves, each rendered and written as its own piece."""
    from mirkit.data import mma as mma_lib

    rng = random.Random(job.piece)
    families = list(mma_lib.FAMILIES)
    plans = [mma_lib.plan_piece(rng, family=family, bpm=rng.uniform(*mma_lib.FAMILY_BPM[family]),
                                duration_s=MMA_PIECE_S) for family in (rng.choice(families) for _ in range(MMA_PIECES))]
    try:
        rendered = mma_lib.render_pieces(plans, home=Path(job.path), duration_s=MMA_PIECE_S,
                                         seed=int(sha256_text(job.piece)[:6], 16))
    except RuntimeError as exc:
        return [], {"piece": job.piece, "reason": "mma_failed", "message": str(exc)[:300]}
    pieces = [CorpusJob("mma", f"{job.piece}:{i:02d}", job.path, job.licence, "mma") for i in range(len(plans))]
    audios = synthesis.render_all([(score, *synthesis.draw(rng), piece.piece)
                                   for piece, (score, _, _) in zip(pieces, rendered)])
    rows = []
    for piece, plan, (score, bpm, _), (audio, drawn) in zip(pieces, plans, rendered, audios):
        rows += _write_chunks(piece, audio, Path(out_dir), digest=_audio_digest(audio), rendering={
            **drawn, "groove": plan.groove, "bpm": round(bpm, 2), "programs": sorted(set(score.programs.values()))})
    return rows, None


def _render_generated_batch(job: CorpusJob, out_dir: str, synthesis: Synthesis) -> tuple[list[dict], dict | None]:
    """A batch of :func:`mirkit.data.harmony.corpus_piece` pieces, each written as its own piece."""
    from mirkit.data.harmony import corpus_piece

    rng = random.Random(job.piece)
    planned = []
    for i in range(GENERATED_PIECES):  # the same draws, in the same order, as corpora built before
        score, drawn = corpus_piece(rng, duration_s=rng.uniform(*GENERATED_PIECE_S))
        piece = CorpusJob("generated", f"{job.piece}:{i:02d}", job.path, job.licence, "generated")
        planned.append((piece, drawn, (score, *synthesis.draw(rng), piece.piece)))
    rows = []
    for (piece, drawn, _), (audio, rendered) in zip(planned, synthesis.render_all([p[2] for p in planned])):
        rows += _write_chunks(piece, audio, Path(out_dir), digest=_audio_digest(audio), rendering={**rendered, **drawn})
    return rows, None


def run_job(job: CorpusJob, out_dir: str, synthesis: Synthesis) -> tuple[list[dict], dict | None]:
    """Render or decode one piece (an MMA job: a batch of pieces) into chunks; ``(rows, None)`` or
    ``([], skip record)``."""
    from mirkit.audio import load

    if job.kind == "mma":
        return _render_mma_batch(job, out_dir, synthesis)
    if job.kind == "generated":
        return _render_generated_batch(job, out_dir, synthesis)
    try:
        if job.kind == "score":
            audio, rendering = _render(job, synthesis)
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
    return _write_chunks(job, audio, Path(out_dir), digest=_audio_digest(audio), rendering=rendering), None


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
