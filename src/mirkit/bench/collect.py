"""Read a bench folder back into rows for the report: one row per (task, encoder, layer job) or peer.

Model selection never looks at the test split: an encoder's best layer is the one with the best
mean *validation* headline over seeds; its *test* score is what the leaderboard shows.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mirkit.encoders.zoo import get_spec
from mirkit.errors import ConfigError, UnknownNameError
from mirkit.kinds import current_name


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
    peers = _current_peers([_read(p) for p in sorted((runs / "peers").glob("*.json"))])
    for peer in peers:
        test = {k: (float(v), 0.0) for k, v in peer["test"].items()}
        rows.append(Row(task=peer["task"], name=peer["peer"], group="peer", job="-",
                        layer_label=f"{peer['package']} {peer['version']}", pooling="-", seeds=1, test=test,
                        valid_headline=float("nan"), train_s=0.0,
                        extract={"wall_s": peer["wall_s"], "clips": peer["clips"], "skipped": peer["skipped"]}))
    context["peers"] = peers
    real = {}
    for result in (_read(p) for p in sorted((runs / "real_tempo").glob("*.json"))):
        if result:  # a peer's result under its current name (one written under an old name gives way to it)
            name = current_name(str(result["name"])) if result.get("kind") == "peer" else str(result["name"])
            if name not in real or result["name"] == name:
                real[name] = {**result, "name": name}
    context["real_tempo"] = list(real.values())
    context["plan"]["peers"] = [current_name(n) for n in context["plan"].get("peers", [])]  # type: ignore[index]
    return rows, context


def _current_peers(results: list[dict]) -> list[dict]:
    """Peer results under their current names; a result kept under a peer's old name gives way to one under
    its new name for the same task (a rerun after the rename)."""
    out: dict[tuple[str, str], dict] = {}
    for result in results:
        if not result:
            continue
        name = current_name(str(result["peer"]))
        key = (str(result["task"]), name)
        if key not in out or result["peer"] == name:
            out[key] = {**result, "peer": name}
    return list(out.values())


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


#: clip-level tasks that another task's probes also answer: task -> (source task, metric prefix, headline)
DERIVED = {"tempo": ("beat", "tempo_", "acc1")}


def derived_rows(rows: list[Row], task: str) -> list[Row]:
    """Rows of ``task`` read off another task's probes: each encoder's beat probe (its layer chosen on the
    beat task's validation split) decoded to one tempo per clip. The beat task's clips are the tempo
    task's grooves, so both score the same test clips."""
    if task not in DERIVED:
        return []
    source, prefix, headline = DERIVED[task]
    found = []
    for (t, _), r in sorted(best_rows(rows).items()):
        test = {k.removeprefix(prefix): v for k, v in r.test.items() if k.startswith(prefix)}
        if t != source or headline not in test:
            continue
        found.append(replace(r, task=task, group=f"{r.group}, {source} probe", test={"headline": test[headline], **test},
                             valid_headline=r.valid.get(prefix + headline, float("nan")),
                             test_range={k.removeprefix(prefix): v for k, v in r.test_range.items()
                                         if k.startswith(prefix)}))
    return found


def chosen_row(rows: list[Row], task: str, name: str) -> Row | None:
    """``name``'s row on ``task`` as the report's tables choose it: among its best single layer, its learned
    weighting and the rows read off another task's probes (the beat probe's tempo), the one with the best
    validation headline; a peer's own row."""
    peer = [r for r in rows if r.task == task and r.name == name and r.group == "peer"]
    if peer:
        return peer[0]
    single = best_rows(rows).get((task, name))
    candidates = ([single] if single else []) + [r for r in rows if r.task == task and r.name == name
                                                  and r.job == "weighted"]
    candidates += [r for r in derived_rows(rows, task) if r.name == name]
    candidates = [r for r in candidates if not math.isnan(r.valid_headline)]
    return max(candidates, key=lambda r: r.valid_headline) if candidates else None


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
