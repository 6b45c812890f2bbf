"""``predict_timed``: apply a frame-level probe run (beat, chords, transcription, onsets...) to new audio.

The layer job with the best mean validation headline is used and its seeds' frame activations are
averaged, then decoded by the task's kind as in the benchmark. Written into the output folder, per
audio file, what the kind writes (``FrameKind.write_files``: ``<name>.beats.txt`` and
``<name>.downbeats.txt``, ``<name>.lab``, ``<name>.mid``, ``<name>.onsets.txt``), and one line per file
in ``predictions.jsonl`` (the decoded events). Bad files are skipped and reported as in extract.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mirkit.adapt.predict import best_job
from mirkit.adapt.timed.heads import FrameHead
from mirkit.errors import CheckpointError, ConfigError
from mirkit.features.extract import ExtractConfig, ExtractReport, extract
from mirkit.features.store import FeatureStore
from mirkit.files import atomic_write_text
from mirkit.kinds import FrameKind, frame_kind


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
        self.kind: FrameKind = frame_kind(str(self.context["kind"]))

    def activations(self, frames: np.ndarray) -> np.ndarray:
        """``(layers, frames, dim)`` raw features -> ``(frames, outputs)`` probabilities."""
        x = torch.from_numpy(((frames - self.mean) / self.scale).astype(np.float32))[None]
        with torch.no_grad():
            logits = self.model(x)[0]
        return self.kind.activate(logits).numpy()


def refuse_file_name(out_dir: str | Path, *, what: str) -> None:
    """A folder output named like a file (``.jsonl``, ``.csv``) is refused: it would become a folder of that name."""
    if Path(out_dir).suffix in (".jsonl", ".csv"):
        raise ConfigError(f"--out {str(out_dir)!r}: {what} writes a folder (predictions.jsonl and per audio file its "
                          f"events: beats, chords, notes...), not one file; pass a folder name, e.g. "
                          f"--out {Path(out_dir).with_suffix('')}/.")


def write_decoded(out_dir: str | Path, rows: list[dict[str, object]], meta: dict[str, object],
                  kind: FrameKind | None = None) -> None:
    """Per row the files of ``kind`` (``NAME.beats.txt``, ``NAME.lab``, ``NAME.mid``...; nothing more without a
    kind, e.g. for tag probabilities) and one ``predictions.jsonl`` line each (the row and ``meta``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if kind is not None:
        for row in rows:
            stem = out / Path(str(row["path"])).stem
            kind.write_files(stem, row)
    atomic_write_text(out / "predictions.jsonl", "".join(json.dumps({**r, **meta}) + "\n" for r in rows))


def decode_files(*, run_dir: str | Path, source: str | Path, store: str | Path,
                 progress: bool = True) -> tuple[ExtractReport, list[dict[str, object]], dict[str, object]]:
    """Decode every audio file of ``source`` with the run's best validated layer (its seeds' activations
    averaged): ``(extract report, one row per file, run facts)``; a row holds ``beats``, ``downbeats``
    and ``tempo_bpm``, or ``notes``, or ``chords``."""
    run_dir = Path(run_dir)
    layer_name, model_dirs, _ = best_job(run_dir)
    heads = [TrainedFrameHead(d) for d in model_dirs]
    context, kind = heads[0].context, heads[0].kind
    layers = list(context["layers"])
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
        rows.append({"path": path, **kind.to_row(kind.decode(activation, times, rate_hz=rate, context=context))})
    meta = {"run": str(run_dir), "layer": layer_name, "seeds": len(heads), "encoder": context["encoder"],
            "task": context.get("task"), "kind": kind.name}
    return report, rows, meta


def predict_timed(*, run_dir: str | Path, source: str | Path, store: str | Path, out_dir: str | Path,
                  progress: bool = True) -> tuple[ExtractReport, int]:
    """Decode the run's events (beats, chords, notes, onsets...) for every audio file of ``source`` into the
    folder ``out_dir``; a file-like name (``beats.jsonl``) is refused before any work."""
    best_job(Path(run_dir))  # first: a folder that is no run says so
    refuse_file_name(out_dir, what="a frame-level probe run")
    report, rows, meta = decode_files(run_dir=run_dir, source=source, store=store, progress=progress)
    write_decoded(out_dir, rows, meta, frame_kind(str(meta["kind"])))
    return report, len(rows)


__all__ = ["TrainedFrameHead", "decode_files", "predict_timed", "refuse_file_name", "write_decoded"]
