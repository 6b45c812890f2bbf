"""Do an encoder's injected features carry the task at a booster run's training fractions? A diagnostic.

For a clip-level booster run (tagging), trains linear probes (logistic regression per tag, the inverse
regularisation C chosen on the validation split) on each clip's time-averaged features, at exactly the
training subsets of the run's cells (same fractions, same seeds, same pieces), and scores them on the
run's test split with the run's headline. Three feature sets: the task model's own input (log-mel), the
injected encoder's layers (all of them, concatenated) and its random-init twin's (or those of the
``--encoders`` named). If the encoder's probe beats the task model alone where the boosted model does
not, the features carry the task and the fusion is what fails to use them.

Reads the run's feature store (``--encoders`` not yet extracted are extracted into it). JSON line last.

    python benchmarks/boost_feature_probe.py --run runs/boost-std/tag-musicnn
    python benchmarks/boost_feature_probe.py --run runs/boost-std/tag-musicnn \\
        --encoders mirkit-mel-small,random:mirkit-mel-small
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

C_GRID = (0.01, 0.1, 1.0, 10.0)


def pooled_inputs(clips) -> np.ndarray:
    """Per clip, the time average of the task model's input frames."""
    return np.stack([c.x.mean(axis=0) for c in clips])


def pooled_layers(clips, task_dir: Path, *, encoder: str, kind: str, layers: str, store: str) -> np.ndarray:
    """Per clip, the time average of each injected layer (as the run chose them), concatenated. Read a
    layer and a chunk of clips at a time: a run's aligned frames of every clip take gigabytes."""
    from mirkit.boost.data import injected_layers
    from mirkit.features.extract import ExtractConfig, extract
    from mirkit.features.store import FeatureStore

    chosen = injected_layers(encoder, kind, layers)
    report = extract(task_dir / "manifest.jsonl", store=store, progress=False,
                     config=ExtractConfig(encoder=encoder, layers=chosen, pooling="none"))
    items = FeatureStore(store).recipe(report.recipe)
    ids = [report.item_ids[c.path] for c in clips]
    columns = []
    for layer in (int(k) for k in chosen.split(",")):
        means = []
        for start in range(0, len(ids), 64):
            means += [frames.mean(axis=0) for frames, _ in items.read_frames(layer, ids[start:start + 64])]
        columns.append(np.stack(means))
    return np.concatenate(columns, axis=1)


def probe_logits(train_x, train_y, test_x, *, c: float) -> np.ndarray:
    """One logistic regression per tag; a tag constant over the training clips gets a constant logit."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    train_x, test_x = (train_x - mean) / scale, (test_x - mean) / scale
    out = np.zeros((len(test_x), train_y.shape[1]), dtype=np.float64)
    for tag in range(train_y.shape[1]):
        column = train_y[:, tag]
        if column.min() == column.max():
            out[:, tag] = 10.0 if column[0] > 0 else -10.0
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings at large C: the probe is still scored
            model = LogisticRegression(C=c, max_iter=2000).fit(train_x, column)
        out[:, tag] = model.decision_function(test_x)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a clip-level `mirkit boost` run folder")
    parser.add_argument("--encoders", default="", help="comma-separated encoders to probe instead of the run's "
                        "encoder and its twin (extracted into the run's store if missing: a boost run of theirs "
                        "reuses them)")
    args = parser.parse_args()
    from mirkit.boost.data import load_inputs, training_subset
    from mirkit.boost.run import twin_of

    run = Path(args.run)
    meta = json.loads((run / "boost.json").read_text())
    if meta["kind"] != "multilabel":
        raise SystemExit(f"{run}: a {meta['kind']} run; this diagnostic reads clip-level (tagging) runs only.")
    task_dir, store = Path(meta["task_dir"]), meta["store"]
    fractions = [float(f) for f in meta["config"]["fractions"].split(",")]
    seeds = sorted({json.loads(p.read_text())["seed"] for p in (run / "results").glob("*.json")}) or [0, 1, 2]
    data = load_inputs(task_dir, kind=meta["kind"], input_encoder=meta["input_encoder"], store=store, out=run,
                       progress=False)
    targets, splits = data.targets, data.splits
    order = [c for split in ("train", "valid", "test") for c in splits[split]]
    bounds = np.cumsum([0] + [len(splits[split]) for split in ("train", "valid", "test")])

    def by_split(matrix: np.ndarray) -> dict[str, np.ndarray]:
        return {split: matrix[bounds[k]:bounds[k + 1]] for k, split in enumerate(("train", "valid", "test"))}

    sets = {meta["input_encoder"]: by_split(pooled_inputs(order))}
    sources = [e.strip() for e in args.encoders.split(",") if e.strip()] or [meta["encoder"], twin_of(meta["encoder"])]
    for source in sources:
        sets[source] = by_split(pooled_layers(order, task_dir, encoder=source, kind=meta["kind"],
                                              layers=meta["config"]["layers"], store=store))
    rows = []
    for name, x in sets.items():
        for fraction in fractions:
            for seed in seeds:
                train = training_subset(splits["train"], fraction=fraction, seed=seed, targets=targets)
                keep = {c.path for c in train}
                mask = np.array([c.path in keep for c in splits["train"]])
                train_y = np.stack([c.target for c in train])
                best = max(C_GRID, key=lambda c: targets.evaluate(
                    [c_.labels for c_ in splits["valid"]],
                    probe_logits(x["train"][mask], train_y, x["valid"], c=c))["headline"])
                test = targets.evaluate([c.labels for c in splits["test"]],
                                        probe_logits(x["train"][mask], train_y, x["test"], c=best))["headline"]
                rows.append({"features": name, "fraction": fraction, "seed": seed, "train_clips": len(train),
                             "c": best, "test_headline": round(float(test), 4)})
                print(f"{name:<22} fraction {fraction:<5g} seed {seed}: {len(train):>4} clips, C={best:<5g} "
                      f"test {test:.3f}", flush=True)
    summary = {}
    for name in sets:
        for fraction in fractions:
            values = [r["test_headline"] for r in rows if r["features"] == name and r["fraction"] == fraction]
            summary[f"{name}@{fraction:g}"] = {"mean": round(float(np.mean(values)), 4),
                                               "min": min(values), "max": max(values)}
    print(json.dumps({"benchmark": "boost_feature_probe", "run": str(run), "task": meta["task"],
                      "headline": "roc_auc", "summary": summary, "rows": rows}))


if __name__ == "__main__":
    main()
