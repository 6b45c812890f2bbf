"""``mirkit predict`` for tune runs: the tuned model (base encoder + method weights, LoRA merged)
on new audio, averaging non-overlapping windows as in evaluation. Bad files are skipped and reported."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from mirkit.adapt.predict import prediction_row, write_predictions
from mirkit.audio import load
from mirkit.errors import AudioError, ConfigError
from mirkit.features.inputs import scan_inputs
from mirkit.tune.data import ClipSet
from mirkit.tune.loop import _label_units, predict
from mirkit.tune.run import load_tuned


def predict_tuned(*, run_dir: str | Path, source: str | Path, out_path: str | Path, device: str = "cpu",
                  top_k: int = 5, progress: bool = True) -> tuple[int, list[tuple[str, str]]]:
    """Write one prediction per audio file; returns ``(rows written, [(path, reason) skipped])``."""
    from tqdm import tqdm

    out_path = Path(out_path)
    if out_path.suffix not in (".jsonl", ".csv"):
        raise ConfigError(f"--out {str(out_path)!r} must end in .jsonl or .csv.")
    model, targets, meta = load_tuned(run_dir, device=device, merge=True)
    spec = model.encoder.spec
    config = meta["config"]
    paths, not_audio = scan_inputs(source)
    skipped = [(p, message) for p, _, message in not_audio]
    waves, kept = [], []
    for path in tqdm(paths, desc="decode", unit="file", disable=not progress or None):
        try:
            wave, _ = load(path, sample_rate=spec.sample_rate, min_duration_s=spec.min_duration_s)
        except AudioError as exc:
            skipped.append((path, f"{type(exc).__name__}: {exc}"))
            continue
        waves.append(wave)
        kept.append(path)
    rows = []
    if kept:
        window = int(round(float(config["crop_s"]) * spec.sample_rate))  # type: ignore[arg-type]
        outputs = predict(model, ClipSet(waves, [None] * len(waves), kept), window_samples=window,
                          min_samples=max(1, math.ceil(spec.min_duration_s * spec.sample_rate)),
                          batch_size=int(config["batch_size"]), device=torch.device(device),  # type: ignore[arg-type]
                          method=str(meta["method"]))
        outputs = _label_units(outputs, model, targets.kind)
        for path, output, value in zip(kept, outputs, targets.decode(outputs)):
            rows.append(prediction_row(path, targets.kind, targets.classes, output, value, top_k=top_k))
    write_predictions(out_path, rows, {"run": str(run_dir), "method": meta["method"], "encoder": meta["name"],
                                       "seed": meta["seed"], "task": meta["task"]})
    return len(rows), skipped
