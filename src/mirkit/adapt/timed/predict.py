"""``predict_timed``: apply a frame-level probe run (beat, chords or transcription) to new audio.

The layer job with the best mean validation headline is used and its seeds' frame activations are
averaged, then decoded as in the benchmark. Written into the output folder, per audio file:
``<name>.beats.txt`` and ``<name>.downbeats.txt`` (one time in seconds per line), ``<name>.lab``
(``start end label`` per chord segment) or ``<name>.mid`` (the notes, pretty_midi), and one line per
file in ``predictions.jsonl`` (beats, downbeats and tempo, chord segments, or notes). Bad files are skipped and reported as in extract.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mirkit.adapt.predict import best_job
from mirkit.adapt.timed.decode import (
    beats_from_activation,
    chords_from_posteriors,
    downbeats_from_beats,
    notes_from_activations,
    tempo_from_activation,
    write_lab,
    write_midi,
)
from mirkit.adapt.timed.heads import FrameHead
from mirkit.adapt.timed.targets import KEYS
from mirkit.errors import CheckpointError
from mirkit.features.extract import ExtractConfig, ExtractReport, extract
from mirkit.features.store import FeatureStore
from mirkit.files import atomic_write_text


class TrainedFrameHead:
    """A saved frame-level head with its standardisation and settings (``models/<job>/``)."""

    def __init__(self, folder: Path) -> None:
        from safetensors.torch import load_file

        try:
            self.context = json.loads((folder / "head.json").read_text())
            state = load_file(str(folder / "head.safetensors"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{folder} is not a saved frame-level head ({exc}); rerun `mirkit probe`.") from None
        self.mean, self.scale = state.pop("mean").numpy(), state.pop("scale").numpy()
        layers, dim = self.mean.shape[0], self.mean.shape[2]
        self.model = FrameHead(layers=layers, dim=dim, outputs=int(self.context["outputs"]), head=self.context["head"])
        self.model.load_state_dict(state)
        self.model.eval()

    def activations(self, frames: np.ndarray) -> np.ndarray:
        """``(layers, frames, dim)`` raw features -> ``(frames, outputs)`` probabilities."""
        x = torch.from_numpy(((frames - self.mean) / self.scale).astype(np.float32))[None]
        with torch.no_grad():
            logits = self.model(x)[0]
        return (torch.softmax(logits, -1) if self.context["kind"] == "chords" else torch.sigmoid(logits)).numpy()


def decode_activation(kind: str, activation: np.ndarray, times_s: np.ndarray, *, rate_hz: float,
                      tempo_range_bpm: tuple[float, float] | None = None) -> dict[str, object]:
    """One file's musical output from its frame probabilities: ``beats``, ``downbeats`` and ``tempo_bpm``
    (beat; ``tempo_range_bpm``: the model's training tempo range), ``notes`` as ``[onset_s, offset_s,
    pitch]`` (transcription) or ``chords`` as ``[start, end, label]``."""
    if kind == "beat":
        beats = beats_from_activation(activation[:, 0], times_s, rate_hz=rate_hz)
        downbeats = downbeats_from_beats(beats, activation[:, 1], times_s)
        return {"beats": [round(float(t), 3) for t in beats], "downbeats": [round(float(t), 3) for t in downbeats],
                "tempo_bpm": round(tempo_from_activation(activation[:, 0], rate_hz=rate_hz,
                                                         tempo_range_bpm=tempo_range_bpm), 2)}
    if kind == "transcription":
        return {"notes": [list(n) for n in notes_from_activations(activation[:, :KEYS], activation[:, KEYS:], times_s,
                                                                  rate_hz=rate_hz)]}
    return {"chords": [list(s) for s in chords_from_posteriors(activation, times_s, rate_hz=rate_hz)]}


def write_decoded(out_dir: str | Path, rows: list[dict[str, object]], meta: dict[str, object]) -> None:
    """Per row ``<name>.beats.txt`` + ``<name>.downbeats.txt``, ``<name>.mid`` or ``<name>.lab`` (nothing
    more for other rows, e.g. tag probabilities), and one ``predictions.jsonl`` line each (the row and ``meta``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for row in rows:
        stem = out / Path(str(row["path"])).stem
        if "beats" in row:
            atomic_write_text(stem.with_name(stem.name + ".beats.txt"), "".join(f"{t:.3f}\n" for t in row["beats"]))
            atomic_write_text(stem.with_name(stem.name + ".downbeats.txt"),
                              "".join(f"{t:.3f}\n" for t in row["downbeats"]))
        elif "notes" in row:
            write_midi(stem.with_name(stem.name + ".mid"), [tuple(n) for n in row["notes"]])
        elif "chords" in row:
            write_lab(stem.with_name(stem.name + ".lab"), [tuple(c) for c in row["chords"]])
    atomic_write_text(out / "predictions.jsonl", "".join(json.dumps({**r, **meta}) + "\n" for r in rows))


def decode_files(*, run_dir: str | Path, source: str | Path, store: str | Path,
                 progress: bool = True) -> tuple[ExtractReport, list[dict[str, object]], dict[str, object]]:
    """Decode every audio file of ``source`` with the run's best validated layer (its seeds' activations
    averaged): ``(extract report, one row per file, run facts)``; a row holds ``beats``, ``downbeats``
    and ``tempo_bpm``, or ``notes``, or ``chords``."""
    run_dir = Path(run_dir)
    layer_name, model_dirs, _ = best_job(run_dir)
    heads = [TrainedFrameHead(d) for d in model_dirs]
    context = heads[0].context
    layers, kind = list(context["layers"]), str(context["kind"])
    report = extract(source, store=store, progress=progress,
                     config=ExtractConfig(encoder=str(context["encoder"]), layers=layers, pooling="none",
                                          frame_rate_hz=context.get("extract_frame_rate_hz"),
                                          loudness=str(context.get("loudness") or "none")))
    items = FeatureStore(store).recipe(report.recipe)
    paths = sorted(report.item_ids)
    per_layer = {layer: items.read_frames(layer, [report.item_ids[p] for p in paths]) for layer in layers}
    rate = float(context["frame_rate_hz"])
    rows = []
    for k, path in enumerate(paths):
        times = per_layer[layers[0]][k][1]
        frames = np.stack([per_layer[layer][k][0] for layer in layers]).astype(np.float32)
        activation = np.mean([head.activations(frames) for head in heads], axis=0)
        rows.append({"path": path, **decode_activation(kind, activation, times, rate_hz=rate,
                                                        tempo_range_bpm=context.get("tempo_range_bpm"))})
    meta = {"run": str(run_dir), "layer": layer_name, "seeds": len(heads), "encoder": context["encoder"],
            "task": context.get("task")}
    return report, rows, meta


def predict_timed(*, run_dir: str | Path, source: str | Path, store: str | Path, out_dir: str | Path,
                  progress: bool = True) -> tuple[ExtractReport, int]:
    """Decode beats/downbeats/tempo, chords or notes for every audio file of ``source`` into ``out_dir``."""
    report, rows, meta = decode_files(run_dir=run_dir, source=source, store=store, progress=progress)
    write_decoded(out_dir, rows, meta)
    return report, len(rows)


__all__ = ["TrainedFrameHead", "decode_activation", "decode_files", "predict_timed", "write_decoded"]
