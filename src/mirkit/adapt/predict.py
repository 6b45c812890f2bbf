"""``predict``: apply a probe run to new audio.

The layer with the best mean validation score in the run is used, and the outputs of its seeds'
heads are averaged. Features come through the feature store with the run's encoder and layers,
so files already extracted are not recomputed; bad files are skipped and reported as in extract.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from mirkit.adapt.probe import TrainedProbe
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, ExtractReport, extract
from mirkit.features.store import FeatureStore
from mirkit.files import atomic_write_bytes


def best_job(run_dir: Path, *, include_weighted: bool = True) -> tuple[str, list[Path], dict[str, object]]:
    """``(layer name, model folders of its seeds, one result record)`` with the best mean validation score;
    ``include_weighted=False`` chooses among single layers only, as the report's leaderboard does."""
    results = sorted((run_dir / "results").glob("*.json"))
    if not results:
        raise ConfigError(f"{run_dir} holds no probe results; run `mirkit probe ... --out {run_dir}` first.")
    by_layer: dict[str, list[tuple[float, Path, dict]]] = defaultdict(list)
    for path in results:
        record = json.loads(path.read_text())
        name = path.stem.split("__")[1]
        if name == "weighted" and not include_weighted:
            continue
        model_dir = run_dir / "models" / path.stem
        if model_dir.is_dir():
            by_layer[name].append((record["valid"]["headline"], model_dir, record))
    if not by_layer:
        raise ConfigError(f"{run_dir}/models is empty; rerun `mirkit probe` (runs before heads were saved cannot predict).")
    name = max(by_layer, key=lambda k: (np.mean([v for v, _, _ in by_layer[k]]), k))
    return name, [d for _, d, _ in by_layer[name]], by_layer[name][0][2]


def predict(*, run_dir: str | Path, source: str | Path, store: str | Path, out_path: str | Path,
            progress: bool = True, top_k: int = 5) -> tuple[ExtractReport, int]:
    """Write one prediction per audio file to ``out_path`` (.jsonl or .csv); returns (extract report, rows)."""
    run_dir, out_path = Path(run_dir), Path(out_path)
    layer_name, model_dirs, record = best_job(run_dir)  # first: a folder that is no run says so
    if out_path.suffix not in (".jsonl", ".csv"):
        raise ConfigError(f"--out {str(out_path)!r} must end in .jsonl or .csv (one line per file; "
                          f"{record.get('task') or 'this'} is a clip-level task).")
    probes = [TrainedProbe.load(d) for d in model_dirs]
    layers = probes[0].layers
    report = extract(source, store=store, progress=progress,
                     config=ExtractConfig(encoder=str(record["encoder"]), layers=layers,
                                          frame_rate_hz=record.get("frame_rate_hz"),  # type: ignore[arg-type]
                                          loudness=str(record.get("loudness") or "none")))
    items = FeatureStore(store).recipe(report.recipe)
    paths = sorted(report.item_ids)
    ids = [report.item_ids[p] for p in paths]
    rows = []
    if ids:
        parts = [items.read_pooled(layer, ids) for layer in layers]
        features = parts[0] if len(parts) == 1 else np.stack(parts, axis=1)
        outputs = np.mean([probe.predict_outputs(features) for probe in probes], axis=0)
        targets = probes[0].targets
        decoded = targets.decode(outputs)
        for path, output, value in zip(paths, outputs, decoded):
            rows.append(targets.prediction_row(path, output, value, top_k=top_k))
    meta = {"run": str(run_dir), "layer": layer_name, "seeds": len(probes), "encoder": record["encoder"],
            "task": record.get("task")}
    write_predictions(out_path, rows, meta)
    return report, len(rows)


def write_predictions(out_path: Path, rows: list[dict[str, object]], meta: dict[str, object]) -> None:
    """One line per file (.jsonl, with ``meta`` on every line) or a path/prediction/details table (.csv); atomic."""
    if out_path.suffix == ".jsonl":
        data = "".join(json.dumps({**row, **meta}) + "\n" for row in rows)
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["path", "prediction", "details"])
        for row in rows:
            writer.writerow([row["path"], json.dumps(row["prediction"]), json.dumps(row.get("scores", {}))])
        data = buffer.getvalue()
    atomic_write_bytes(out_path, data.encode())
