"""Random crops of a pretraining corpus, a pure function of (seed, index).

Crop ``i`` picks a corpus file with probability proportional to its duration and an offset in it,
both from ``numpy.random.default_rng([seed, i])``, so the batches of a run depend on nothing but
the seed and the position: a resumed run sees exactly the crops it would have seen (tested). Files
are short chunks (``mirkit data corpus`` writes at most 30 s each), so each is decoded whole, as
mirkit always does, then resampled to the model's rate. The CQT teacher of each crop is computed
here, in the loader's worker processes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mirkit.errors import AudioError, ConfigError
from mirkit.files import iter_jsonl
from mirkit.pretrain.teachers import CQT_BINS, cqt_target

log = logging.getLogger(__name__)
MANIFEST = "corpus.jsonl"


@dataclass(frozen=True)
class CorpusFile:
    path: str  # absolute
    duration_s: float


def read_corpus(corpus_dir: str | Path) -> list[CorpusFile]:
    """The files of a corpus folder (``corpus.jsonl``, paths relative to it); refuses an empty corpus."""
    folder = Path(corpus_dir)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise ConfigError(f"{folder} is not a pretraining corpus (no {MANIFEST}); build one with "
                          f"`mirkit data corpus --out {folder}` (add your own music with --add DIR).")
    files = [CorpusFile(str(folder / row["path"]), float(row["duration_s"])) for _, row in iter_jsonl(manifest)
             if float(row.get("duration_s", 0)) > 0]
    if not files:
        raise ConfigError(f"corpus {folder} lists no audio; rebuild it with `mirkit data corpus --out {folder}`.")
    return files


class CropDataset(torch.utils.data.Dataset):
    """Item ``i``: ``(wave (crop samples,), valid samples, cqt (tokens, bins), distill (tokens, dims),
    present (tokens, teachers))``; short files are zero-padded. Without teachers ``distill`` and
    ``present`` have no columns."""

    def __init__(self, files: list[CorpusFile], *, sample_rate: int, crop_s: float, seed: int, token_hop: int,
                 tokens_per_crop: int, cqt: bool = True, attempts: int = 8, teachers=None) -> None:
        self.files, self.sample_rate, self.seed = files, sample_rate, seed
        self.teachers = teachers  # a mirkit.pretrain.distill.TeacherTargets, or None
        self.crop = int(round(crop_s * sample_rate))
        self.token_hop, self.tokens, self.cqt, self.attempts = token_hop, tokens_per_crop, cqt, attempts
        weights = np.asarray([f.duration_s for f in files], dtype=np.float64)
        self.cumulative = np.cumsum(weights / weights.sum())

    def __len__(self) -> int:
        return 2 ** 62  # indices are positions in an endless stream of crops

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor, torch.Tensor, torch.Tensor]:
        from mirkit.audio import load

        rng = np.random.default_rng([self.seed, index])
        for _ in range(self.attempts):
            file = self.files[min(int(np.searchsorted(self.cumulative, rng.random())), len(self.files) - 1)]
            try:
                audio, _ = load(file.path, sample_rate=self.sample_rate)
                break
            except AudioError as exc:  # a damaged corpus file: draw another (deterministically)
                log.warning("corpus file skipped: %s", exc)
        else:
            raise ConfigError(f"{self.attempts} corpus files in a row could not be decoded (last: {file.path}); "
                              "check the corpus with `mirkit data corpus --out DIR` (it re-verifies every file).")
        offset = int(rng.integers(0, len(audio) - self.crop + 1)) if len(audio) > self.crop else 0
        piece = audio[offset : offset + self.crop]
        wave = np.zeros(self.crop, dtype=np.float32)
        wave[: len(piece)] = piece
        target = (cqt_target(piece, sample_rate=self.sample_rate, hop=self.token_hop, tokens=self.tokens)
                  if self.cqt else np.zeros((self.tokens, CQT_BINS), dtype=np.float32))
        if self.teachers is not None:
            distill, present = self.teachers.crop(file.path, start_s=offset / self.sample_rate, tokens=self.tokens,
                                                  token_rate_hz=self.sample_rate / self.token_hop)
            present[len(piece) // self.token_hop:] = False  # padding past the file's end teaches nothing
        else:
            distill, present = np.zeros((self.tokens, 0), np.float32), np.zeros((self.tokens, 0), bool)
        return (torch.from_numpy(wave), len(piece), torch.from_numpy(target), torch.from_numpy(distill),
                torch.from_numpy(present))


class StreamSampler(torch.utils.data.Sampler):
    """Indices ``start, start + 1, ...`` up to ``stop`` (the crops of the steps still to run); under
    torchrun, process ``rank`` of ``world_size`` takes the rows ``rank::world_size`` of each micro-batch
    of ``batch_size`` crops (``start`` is a micro-batch boundary)."""

    def __init__(self, start: int, stop: int, *, batch_size: int = 1, rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size or not 0 <= rank < world_size:
            raise ConfigError(f"a batch of {batch_size} crops does not split over {world_size} processes (rank {rank}).")
        self.start, self.stop, self.batch_size, self.rank, self.world_size = start, stop, batch_size, rank, world_size

    def __iter__(self):
        return (i for i in range(self.start, self.stop) if (i % self.batch_size) % self.world_size == self.rank)

    def __len__(self) -> int:
        return max(0, self.stop - self.start) // self.world_size
