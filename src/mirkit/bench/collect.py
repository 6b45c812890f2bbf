"""Read a bench folder back into rows for the report: one row per (task, encoder, layer job) or peer.

Model selection never looks at the test split: an encoder's best layer is the one with the best
mean *validation* headline over seeds; its *test* score is what the leaderboard shows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirkit.encoders.zoo import get_spec
from mirkit.errors import ConfigError, UnknownNameError


@dataclass
class Row:
    """One leaderboard entry (a probe job averaged over seeds, or a peer)."""

    task: str
    name: str  # encoder or peer name
    group: str  # pretrained | random-init twin | handcrafted baseline | test | peer
    job: str  # layer<k>, weighted, or "-" for peers
    layer_label: str
    pooling: str
    seeds: int
    test: dict[str, tuple[float, float]]  # metric -> (mean, std)
    valid_headline: float
    feature_dim: int | None = None
    parameters: int | None = None
    train_s: float = 0.0
    extract: dict[str, object] = field(default_factory=dict)
    layer_weights: list[float] = field(default_factory=list)
    test_range: dict[str, tuple[float, float]] = field(default_factory=dict)  # metric -> (min, max) over seeds
    valid: dict[str, float] = field(default_factory=dict)  # metric -> mean over seeds, validation split

    @property
    def headline(self) -> tuple[float, float]:
        return self.test["headline"]


def encoder_group(name: str) -> str:
    if name.startswith("random:"):
        return "random-init twin"
    try:
        family = get_spec(name).family
    except UnknownNameError:
        return "unknown"
    return {"baseline": "handcrafted baseline", "test": "test"}.get(family, "pretrained")


def layer_label(encoder: str, job: str, layers: list[int]) -> str:
    if job == "weighted":
        return f"weighted sum of {len(layers)} layers ({layers[0]}-{layers[-1]})"
    index = int(job.removeprefix("layer"))
    try:
        return f"{index} {get_spec(encoder).layers[index].name}"
    except (UnknownNameError, IndexError):
        return str(index)


def pooling_label(encoder: str, record: dict) -> str:
    """``mean of 62.5 fps frames``: how clip vectors were made, with the frame rate they came from."""
    rate = record.get("frame_rate_hz")
    if rate is None:
        try:
            rate = get_spec(encoder).layers[record["layers"][0]].frame_rate_hz
        except (UnknownNameError, IndexError, KeyError):
            return str(record.get("pooling", "mean"))
    if record.get("pooling") == "none":
        head = record.get("head", "linear")
        return f"every frame at {rate:.3g} fps" + (f" ({head} head)" if head != "linear" else "")
    return f"{record.get('pooling', 'mean')} of {rate:.3g} fps frames"


def collect(runs_dir: str | Path) -> tuple[list[Row], dict[str, object]]:
    """All rows of a bench folder plus its context (plan, provenance, peers, failures)."""
    runs = Path(runs_dir)
    if not (runs / "bench.json").is_file():
        raise ConfigError(f"{runs} is not a bench folder (no bench.json); run `mirkit bench --suite DIR --out {runs}`.")
    context: dict[str, object] = {"plan": json.loads((runs / "bench.json").read_text())}
    context["provenance"] = _read(runs / "provenance.json")
    context["failures"] = [_read(p) for p in sorted((runs / "failures").glob("*.json"))]
    rows: list[Row] = []
    for run in sorted((runs / "tasks").glob("*/*")):
        rows.extend(_probe_rows(run))
    peers = [_read(p) for p in sorted((runs / "peers").glob("*.json"))]
    for peer in peers:
        test = {k: (float(v), 0.0) for k, v in peer["test"].items()}
        rows.append(Row(task=peer["task"], name=peer["peer"], group="peer", job="-",
                        layer_label=f"{peer['package']} {peer['version']}", pooling="-", seeds=1, test=test,
                        valid_headline=float("nan"), train_s=0.0,
                        extract={"wall_s": peer["wall_s"], "clips": peer["clips"], "skipped": peer["skipped"]}))
    context["peers"] = peers
    context["real_tempo"] = [_read(p) for p in sorted((runs / "real_tempo").glob("*.json"))]
    return rows, context


def best_rows(rows: list[Row]) -> dict[tuple[str, str], Row]:
    """Per (task, encoder) the single-layer job with the best mean validation headline."""
    best: dict[tuple[str, str], Row] = {}
    for row in rows:
        if row.group == "peer" or row.job == "weighted":
            continue
        key = (row.task, row.name)
        if key not in best or row.valid_headline > best[key].valid_headline:
            best[key] = row
    return best


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _probe_rows(run: Path) -> list[Row]:
    results = sorted((run / "results").glob("*.json"))
    by_job: dict[str, list[dict]] = defaultdict(list)
    for path in results:
        record = _read(path)
        if record:
            by_job[record.get("job") or path.stem.split("__")[1]].append(record)
    summary = _read(run / "summary.json")
    extract = _read(run / "extract.json")
    rows = []
    for job, records in by_job.items():
        if summary and len(records) < int(summary.get("seeds", 0)):
            continue  # an interrupted job: not all seeds finished
        encoder = records[0]["encoder"]
        metrics = [m for m in records[0]["test"] if all(m in r["test"] for r in records)]
        test = {m: (float(np.mean([r["test"][m] for r in records])), float(np.std([r["test"][m] for r in records])))
                for m in metrics}
        weights = [r["layer_weights"] for r in records if r.get("layer_weights")]
        rows.append(Row(
            task=records[0]["task"], name=encoder, group=encoder_group(encoder), job=job,
            layer_label=layer_label(encoder, job, records[0]["layers"]), pooling=pooling_label(encoder, records[0]),
            seeds=len(records), test=test, valid_headline=float(np.mean([r["valid"]["headline"] for r in records])),
            feature_dim=records[0].get("feature_dim"), parameters=records[0].get("parameters"),
            train_s=float(sum(r.get("train_s", 0.0) for r in records)), extract=extract,
            layer_weights=[float(w) for w in np.mean(weights, axis=0)] if weights else [],
            test_range={m: (float(min(r["test"][m] for r in records)), float(max(r["test"][m] for r in records)))
                        for m in metrics},
            valid={m: float(np.mean([r["valid"][m] for r in records])) for m in records[0].get("valid", {})
                   if all(m in r.get("valid", {}) for r in records)},
        ))
    return rows
