"""What every probe run shares around its results: refusing results of another recipe, the
extraction cost record, the layer the report chooses on validation, the layers a learned
weighting mixes. Imported by clip- and frame-level probing, tuning, boosting and the bench."""

from __future__ import annotations

import json
from pathlib import Path

from mirkit.errors import ConfigError
from mirkit.files import atomic_write_json


def check_results_recipe(out: Path, recipe_id: str, *, force: bool, training: dict[str, object] | None = None) -> None:
    """Results in ``out`` trained on features of another recipe (another encoder revision, frame rate
    or loudness policy), or on other training data (``training``: the augmentation), must not be
    reused as if they were these: refuse, unless ``force``."""
    summary = out / "summary.json"
    if force or not summary.is_file():
        return
    saved = json.loads(summary.read_text())
    before = saved.get("recipe_id")
    if before not in (None, recipe_id):
        raise ConfigError(f"{out} holds results on features of recipe {before}, but this run's features are recipe "
                          f"{recipe_id} (another encoder revision, frame rate or --loudness); use another --out "
                          "folder, or --force to redo every job.")
    for key, value in (training or {}).items():
        old = saved.get(key, "none" if key == "augment" else 0)  # runs from before --augment: none
        if old != value:
            raise ConfigError(f"{out} holds results trained with {key}={old!r}, not {value!r}; "
                              "use another --out folder, or --force to redo every job.")


def record_extraction(path: Path, report, encoder: str) -> None:
    """Extraction cost for the report; kept from the run that computed the features (reruns find them stored)."""
    if report.computed == 0 and path.is_file():
        return
    record = {"encoder": encoder, "recipe_id": report.recipe_id, "computed": report.computed, "cached": report.cached,
              "skipped": report.num_skipped, "audio_s": round(report.audio_s, 3), "wall_s": round(report.wall_s, 3),
              "measured": report.computed > 0}
    atomic_write_json(path, record)


def validated_layer(summary: dict[str, object]) -> tuple[str, dict]:
    """The single-layer job with the best mean validation headline, as the report chooses it
    (the weighted sum is reported beside it, not chosen among layers)."""
    layers = {k: v for k, v in summary["layers"].items() if k != "weighted"}  # type: ignore[union-attr]
    name = max(layers, key=lambda k: layers[k]["valid_headline"])
    return name, layers[name]


def weighted_layers(dims: dict[int, int]) -> list[int]:
    """The largest set of equal-width layers (ties: the set reaching deepest); ``[]`` if no two layers match."""
    by_dim: dict[int, list[int]] = {}
    for layer, dim in sorted(dims.items()):
        by_dim.setdefault(dim, []).append(layer)
    best = max(by_dim.values(), key=lambda group: (len(group), max(group)))
    return best if len(best) > 1 else []


__all__ = ["check_results_recipe", "record_extraction", "validated_layer", "weighted_layers"]
