"""Report blocks for ``mirkit robustness`` results (``RUNS/robustness/results/*.json``): per task, each
encoder's validated layer on the clean and perturbed test split, its worst drop; the best clean
encoder, the best worst case (the highest score under its own worst perturbation: a near-chance
model that nothing can hurt does not win it) and the most robust one (the smallest worst-case drop)."""

from __future__ import annotations

import json
from pathlib import Path

from mirkit.bench.render import Table


def read_results(folder: Path) -> list[dict]:
    out = []
    for path in sorted((folder / "results").glob("*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return out


def robustness_blocks(folder: Path, tasks: list[str]) -> list[tuple[str, object]]:
    """Nothing when no result exists; otherwise a heading, a note on the protocol and a table per task."""
    results = [r for r in read_results(folder) if "perturbed" in r]
    if not results:
        return []
    blocks: list[tuple[str, object]] = [
        ("h2", "Robustness: perturbed test audio"),
        ("p", "`mirkit robustness`: every test clip perturbed (level, filters, room, pink noise, lossy codecs, "
              "another renderer; `mirkit robustness --list`), each encoder's layer chosen on the clean validation "
              "split applied seed by seed; cells are the test headline (mean over seeds) and its drop from the "
              "clean score. Frame-level runs are decoded and scored as their own test split was; a beat probe's "
              "tempo appears in the tempo table as 'ENCODER (beat probe)'.")]
    for task in [t for t in tasks if any(r["task"] == t for r in results)] + \
            sorted({r["task"] for r in results} - set(tasks)):
        rows = sorted((r for r in results if r["task"] == task), key=lambda r: -r["clean"]["mean"])
        names = list(dict.fromkeys(n for r in rows for n in r["perturbed"]))
        table = []
        for r in rows:
            worst = max(r["perturbed"].items(), key=lambda kv: kv[1]["drop"])
            table.append([r["encoder"], r["job"], f"{r['clean']['mean']:.3f}"]
                         + [f"{r['perturbed'][n]['mean']:.3f} ({-r['perturbed'][n]['drop']:+.3f})"
                            if n in r["perturbed"] else "-" for n in names]
                         + [f"{worst[0]} ({-worst[1]['drop']:+.3f})"])
        robust = min(rows, key=lambda r: max(p["drop"] for p in r["perturbed"].values()))
        worst_drop = max(p["drop"] for p in robust["perturbed"].values())
        floor = max(rows, key=lambda r: min(p["mean"] for p in r["perturbed"].values()))
        floor_name, floor_cell = min(floor["perturbed"].items(), key=lambda kv: kv[1]["mean"])
        blocks += [("h2", f"Robustness: {task}"),
                   ("table", Table(["encoder", "layer", "clean"] + names + ["worst"], table)),
                   ("p", f"Best clean: {rows[0]['encoder']} ({rows[0]['clean']['mean']:.3f}). Best worst case (the "
                         f"highest score under its own worst perturbation): {floor['encoder']} "
                         f"({floor_cell['mean']:.3f} under {floor_name}; clean {floor['clean']['mean']:.3f}). Most "
                         f"robust (smallest worst-case drop): {robust['encoder']} (clean {robust['clean']['mean']:.3f}, "
                         f"worst drop {worst_drop:.3f}).")]
    return blocks
