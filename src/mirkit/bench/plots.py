"""Report figures (matplotlib, Agg backend): a task x encoder heatmap and per-layer curves per task."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mirkit.bench.collect import Row, best_rows, chosen_row
from mirkit.data.tasks import TASKS


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def metric_name(task: str) -> str:
    return TASKS.get(task).metric if task in TASKS else "headline"




def cell_mark(row: Row) -> str:
    """``b`` for a row read off the beat probe (tempo), ``w`` for a learned weighting of layers, else nothing."""
    if "beat probe" in row.group:
        return "b"
    return "w" if row.job == "weighted" else ""


def heatmap(rows: list[Row], path: Path) -> Path:
    """Test headline of each encoder's row chosen on validation, as the tables choose it (its best single layer,
    its learned weighting or, for tempo, its beat probe; the cell's mark says which), and of each peer, per task."""
    plt = pyplot()
    tasks = sorted({r.task for r in rows})
    names = sorted({name for _, name in best_rows(rows)}) + sorted({r.name for r in rows if r.group == "peer"})
    values = np.full((len(names), len(tasks)), np.nan)
    marks = np.full((len(names), len(tasks)), "", dtype=object)
    for i, name in enumerate(names):
        for j, task in enumerate(tasks):
            row = chosen_row(rows, task, name)
            if row is not None:
                values[i, j], marks[i, j] = row.headline[0], cell_mark(row)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(tasks), 1.0 + 0.45 * len(names)))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(tasks)), [f"{t}\n({metric_name(t)})" for t in tasks], fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(tasks)):
            if not np.isnan(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}{marks[i, j]}", ha="center", va="center", fontsize=7,
                        color="white" if values[i, j] < 0.6 else "black")
    fig.colorbar(image, ax=ax, fraction=0.04)
    ax.set_title("Test score of each encoder's row chosen on validation, as in the tables\n"
                 "(w: learned weighting of layers, b: beat probe's tempo; peers: as run)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def layer_curves(rows: list[Row], task: str, path: Path) -> Path | None:
    """Test headline (mean +- std over seeds) per layer for each multi-layer encoder of one task."""
    mine = [r for r in rows if r.task == task and r.job.startswith("layer")]
    by_encoder: dict[str, list[Row]] = {}
    for row in mine:
        by_encoder.setdefault(row.name, []).append(row)
    multi = {k: sorted(v, key=lambda r: int(r.job.removeprefix("layer"))) for k, v in by_encoder.items() if len(v) > 1}
    if not multi:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, layer_rows in sorted(multi.items()):
        x = [int(r.job.removeprefix("layer")) for r in layer_rows]
        mean = np.array([r.headline[0] for r in layer_rows])
        std = np.array([r.headline[1] for r in layer_rows])
        line, = ax.plot(x, mean, marker="o", label=name)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    single = [r for r in rows if r.task == task and ((r.job.startswith("layer") and r.name not in multi)
                                                      or r.group == "peer")]
    for k, row in enumerate(sorted(single, key=lambda r: r.name)):
        ax.axhline(row.headline[0], linestyle="--" if row.group != "peer" else ":", linewidth=1,
                   color=f"C{(len(multi) + k) % 10}", label=f"{row.name} ({'peer' if row.group == 'peer' else 'baseline'})")
    ax.set_xlabel("layer index")
    ax.set_ylabel(f"test {metric_name(task)}")
    ax.set_title(f"{task}: per-layer linear probes (band: +- std over seeds)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
