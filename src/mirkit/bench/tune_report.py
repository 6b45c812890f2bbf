"""Transfer methods side by side: tune runs (``mirkit tune``) found under a folder -> a method x task
table, a cost table and a metric-vs-trainable-parameters figure.

Every ``tune.json`` below the folder is one run (task x encoder x method); its seeds' result files
are averaged. Nothing here looks at the test split to choose anything: each run is one method with
fixed settings, early-stopped on validation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.bench.plots import metric_name, pyplot
from mirkit.bench.render import Block, Table, format_mean_std, write_documents
from mirkit.errors import ConfigError


@dataclass
class MethodRow:
    task: str
    encoder: str
    method: str
    seeds: int
    test: tuple[float, float]
    valid: float
    trainable: int
    method_params: int
    percent: float | None
    step_s: float
    epoch_s: float
    wall_s: float
    peak_mib: float
    memory_kind: str
    device: str
    run: str


def collect_methods(root: str | Path) -> list[MethodRow]:
    rows = []
    for meta_path in sorted(Path(root).rglob("tune.json")):
        run = meta_path.parent
        results = [json.loads(p.read_text()) for p in sorted((run / "results").glob("*.json"))]
        if not results:
            continue
        heads = [r["test"]["headline"] for r in results]
        cost = results[0]["cost"]
        rows.append(MethodRow(
            task=results[0]["task"], encoder=results[0]["encoder"], method=results[0]["method"], seeds=len(results),
            test=(float(np.mean(heads)), float(np.std(heads))),
            valid=float(np.mean([r["valid"]["headline"] for r in results])), trainable=int(cost["trainable"]),
            method_params=int(cost["trainable_without_head"]),
            percent=cost.get("trainable_percent_of_encoder"),
            step_s=float(np.mean([r["cost"]["step_s"] for r in results])),
            epoch_s=float(np.mean([r["cost"]["epoch_s"] for r in results])),
            wall_s=float(sum(r["cost"]["wall_s"] for r in results)),
            peak_mib=float(max(r["cost"]["peak_memory_mib"] for r in results)), memory_kind=cost["memory_kind"],
            device=str(cost.get("device", "cpu")), run=str(run)))
    return rows


def method_table(rows: list[MethodRow]) -> Table:
    """Rows: encoder x method; columns: tasks (test headline, mean +- std over seeds)."""
    tasks = sorted({r.task for r in rows})
    keys = sorted({(r.encoder, r.method) for r in rows})
    by = {(r.encoder, r.method, r.task): r for r in rows}
    header = ["encoder", "method", "trained encoder-side params, head excluded (% of encoder)"] + [f"{t} ({metric_name(t)})" for t in tasks]
    table = []
    for encoder, method in keys:
        some = next(r for r in rows if (r.encoder, r.method) == (encoder, method))
        share = f" ({some.percent:.3g}%)" if some.percent is not None else " (no encoder)"
        table.append([encoder, method, f"{some.method_params:,}{share}"]
                     + [format_mean_std(by[(encoder, method, t)].test, by[(encoder, method, t)].seeds)
                        + f" [{by[(encoder, method, t)].seeds}]" if (encoder, method, t) in by else "-" for t in tasks])
    return Table(header, table)


def cost_table(rows: list[MethodRow]) -> Table:
    header = ["task", "encoder", "method", "seeds", "trainable (with head)", "s/step", "s/epoch", "wall (all seeds)", "peak memory",
              "device"]
    return Table(header, [[r.task, r.encoder, r.method, str(r.seeds), f"{r.trainable:,}", f"{r.step_s:.3f}",
                           f"{r.epoch_s:.1f}", f"{r.wall_s:.0f} s", f"{r.peak_mib:.0f} MiB ({r.memory_kind})", r.device]
                          for r in sorted(rows, key=lambda r: (r.task, r.encoder, r.method))])


def params_figure(rows: list[MethodRow], path: Path) -> Path:
    """Test headline against trainable parameters (log scale), one panel per task, one marker per method."""
    plt = pyplot()
    tasks = sorted({r.task for r in rows})
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    markers = dict(zip(sorted({r.method for r in rows}), "osD^v<>ph*"))
    colours = dict(zip(sorted({r.encoder for r in rows}), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4))
    for ax, task in zip(axes[0], tasks):
        for r in (r for r in rows if r.task == task):
            ax.errorbar(max(r.trainable, 1), r.test[0], yerr=r.test[1], marker=markers[r.method],
                        color=colours[r.encoder], linestyle="none", capsize=2)
            ax.annotate(r.method, (max(r.trainable, 1), r.test[0]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("trainable parameters")
        ax.set_ylabel(f"test {metric_name(task)}")
        ax.set_title(task)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="none", label=e) for e, c in colours.items()]
    fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def method_blocks(rows: list[MethodRow], plots: Path) -> list[Block]:
    figure = params_figure(rows, plots / "methods-params.png")
    return [("h2", "Transfer methods"),
            ("p", "Test headline, mean +- std over [seeds]; every method trains the same head (linear or MLP as "
                  "set) with early stopping on validation; training on random crops, evaluation averages "
                  "non-overlapping windows (see each run's result files)."),
            ("table", method_table(rows)), ("img", figure),
            ("h2", "Transfer methods: cost"),
            ("p", "Peak memory on CPU is the process's peak RSS (decoded audio included); on GPU, peak allocated."),
            ("table", cost_table(rows))]


def write_methods_report(root: str | Path) -> tuple[Path, Path]:
    """``ROOT/report.md`` + ``report.html`` for a folder of tune runs."""
    root = Path(root)
    rows = collect_methods(root)
    if not rows:
        raise ConfigError(f"{root} holds no bench folder (bench.json) and no finished tune run (tune.json + results); "
                          "run `mirkit bench` or `mirkit tune --out` under it first.")
    blocks: list[Block] = [("h1", "mirkit transfer methods report"),
                                        ("p", f"{len(rows)} runs under {root}.")]
    blocks += method_blocks(rows, root / "plots")
    return write_documents(blocks, root)


__all__ = ["collect_methods", "method_blocks", "write_methods_report"]
