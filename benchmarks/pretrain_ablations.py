"""Pretraining ablations at equal budget (issue #18): short `mirkit pretrain` runs that differ in one
setting from the reference run, each probed on the same suite tasks, reported as one table.

Variants (all with the reference's preset, steps, batch and seed):

- ``reference``: BEST-RQ targets, CQT loss (weight 1), in-batch mixing (0.5), the whole corpus;
- ``kmeans``: k-means targets instead of BEST-RQ;
- ``no-cqt``: CQT loss weight 0;
- ``no-mix``: mixing probability 0;
- ``hours-10``: the first ~10 h of the corpus only (a sub-corpus whose manifest points at the same files);
- ``random``: no pretraining at all (the random-init twin of the same architecture), the floor.

Issue #33 (mirkit-base) adds, each against ``reference`` at the same budget:

- ``logfreq``: the log-frequency front end (``--preset small-logfreq``: 96 semitone bins over a
  4096-point STFT) instead of the 80-band log-mel;
- ``distill``: the log-mel reference plus the distillation teachers of ``--distill``;
- ``base``: both (mirkit-base's recipe);
- ``base-no-real``: ``base`` on the corpus without its real recordings (source ``debian``).

Each variant's run folder is resumable (rerun the script to continue); its final encoder is probed
with `mirkit probe` (all layers, linear, ``--seeds``) on each task and the best layer *chosen on the
validation split* is reported with its test mean +- std. Prints the table and a JSON line last.

    python benchmarks/pretrain_ablations.py --corpus runs/corpus-clean --suite runs/suite-quick --out runs/ablations \
        [--steps 2000] [--tasks key,genre,instrument,pitch,tagging,tempo] [--seeds 3] [--variants reference,kmeans,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

VARIANTS = ("reference", "kmeans", "no-cqt", "no-mix", "hours-10", "random", "logfreq", "distill", "base",
            "base-no-real")
#: mirkit-base's teachers and weights (``--distill``'s default)
BASE_TEACHERS = "basic-pitch-note=1,basic-pitch-onset=1,crepe=1,musicnn-tags=1,musicnn-penultimate=0.5,chroma=1"
REAL_SOURCES = ("debian", "user")


def sub_corpus(corpus: Path, out: Path, *, hours: float | None = None, drop_sources: tuple[str, ...] = ()) -> Path:
    """A corpus folder holding the first ``hours`` of ``corpus``'s manifest without ``drop_sources``
    (same audio, linked)."""
    from mirkit.files import atomic_write_json, read_jsonl, write_jsonl

    rows, total = [], 0.0
    for row in read_jsonl(corpus / "corpus.jsonl"):
        if hours is not None and total >= hours * 3600:
            break
        if row.get("source") in drop_sources:
            continue
        rows.append(row)
        total += float(row["duration_s"])
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "audio").exists():
        os.symlink((corpus / "audio").resolve(), out / "audio")
    write_jsonl(out / "corpus.jsonl", rows)
    summary = json.loads((corpus / "corpus.json").read_text())
    atomic_write_json(out / "corpus.json", {**summary, "hours": round(total / 3600, 2), "subset_of": str(corpus),
                                            "sources_dropped": list(drop_sources)})
    return out


def run_variant(name: str, *, corpus: Path, out: Path, steps: int, preset: str, distill: str,
                progress: bool) -> tuple[str, dict]:
    """``(encoder name, facts)`` of a variant: pretrain it (resumable) unless it is the random floor."""
    from mirkit.pretrain.config import PretrainConfig
    from mirkit.pretrain.run import pretrain

    base = PretrainConfig(preset=preset, steps=steps, checkpoint_every=max(50, steps // 10))
    if name == "random":
        return "random:" + str(out / "reference" / "final"), {"pretrained": False}
    logfreq = f"{preset}-logfreq"
    # the teachers' outputs are computed once per corpus and shared by every variant that distils
    teachers = dict(distill=distill, teacher_store=str(out / "teachers"))
    config = {"reference": base, "kmeans": replace(base, targets="kmeans"), "no-cqt": replace(base, cqt_weight=0.0),
              "no-mix": replace(base, mix_prob=0.0), "hours-10": base, "logfreq": replace(base, preset=logfreq),
              "distill": replace(base, **teachers), "base": replace(base, preset=logfreq, **teachers),
              "base-no-real": replace(base, preset=logfreq, **teachers)}[name]
    source = corpus
    if name == "hours-10":
        source = sub_corpus(corpus, out / "corpus-10h", hours=10.0)
    elif name == "base-no-real":
        source = sub_corpus(corpus, out / "corpus-no-real", drop_sources=REAL_SOURCES)
    started = time.perf_counter()
    report = pretrain(corpus=source, out_dir=out / name, config=config, progress=progress)
    facts = {"pretrained": True, "preset": config.preset, "targets": config.targets, "distill": config.distill,
             "cqt_weight": config.cqt_weight, "mix_prob": config.mix_prob,
             "corpus_hours": json.loads((source / "corpus.json").read_text())["hours"],
             "wall_s": round(time.perf_counter() - started, 1),
             "last": report.last if report is not None else None}
    return str(out / name / "final"), facts


def probe_scores(encoder: str, *, suite: Path, tasks: list[str], seeds: int, out: Path, store: Path,
                 progress: bool) -> dict[str, dict]:
    """Per task, the best layer of ``encoder`` *chosen on validation* and its test mean, std and seed range."""
    from mirkit.adapt.config import ProbeRunConfig
    from mirkit.adapt.results import validated_layer
    from mirkit.adapt.run import probe_task

    scores = {}
    for task in tasks:
        summary = probe_task(ProbeRunConfig(task_dir=suite / task, encoder=encoder, out_dir=out / task, store=store,
                                            seeds=seeds, progress=progress))
        layer, stats = validated_layer(summary)
        seed_scores = [json.loads(p.read_text())["test"]["headline"]
                       for p in sorted((out / task / "results").glob(f"*__{layer}__*.json"))]
        scores[task] = {"layer": layer, "mean": stats["headline"]["mean"], "std": stats["headline"]["std"],
                        "min": min(seed_scores, default=None), "max": max(seed_scores, default=None)}
    return scores


def print_table(rows: list[dict], *, key: str, tasks: list[str]) -> None:
    """A markdown table: one row per entry, test mean +- std over seeds per task."""
    print(f"\n| {key} | " + " | ".join(tasks) + " |")
    print("|---|" + "---|" * len(tasks))
    for row in rows:
        print(f"| {row[key]} | " + " | ".join(f"{row['scores'][t]['mean']:.3f} +- {row['scores'][t]['std']:.3f}"
                                             for t in tasks) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True, type=Path)
    parser.add_argument("--suite", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--preset", default="small", help="mel preset of every variant (tiny for a smoke run)")
    parser.add_argument("--tasks", default="key,genre,instrument,pitch,tagging,tempo")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--distill", default=BASE_TEACHERS, help="teachers of the distill/base variants")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    if "random" in variants and "reference" not in variants and not (args.out / "reference" / "final").is_dir():
        raise SystemExit("the random floor uses the reference run's architecture: run the reference variant first")
    rows = []
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for name in variants:
        encoder, facts = run_variant(name, corpus=args.corpus, out=args.out, steps=args.steps, preset=args.preset,
                                     distill=args.distill, progress=not args.no_progress)
        scores = probe_scores(encoder, suite=args.suite, tasks=tasks, seeds=args.seeds, out=args.out / "probes" / name,
                              store=args.out / "features", progress=not args.no_progress)
        rows.append({"variant": name, "encoder": encoder, **facts, "scores": scores})
        print(f"{name:<10} " + "  ".join(f"{t} {s['mean']:.3f}+-{s['std']:.3f}" for t, s in scores.items()), flush=True)
    print_table(rows, key="variant", tasks=tasks)
    print(json.dumps({"benchmark": "pretrain_ablations", "steps": args.steps, "seeds": args.seeds, "rows": rows,
                      "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}}))


if __name__ == "__main__":
    main()
