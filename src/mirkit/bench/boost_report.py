"""The report of a boost run: metric vs training fraction per system with seed bands, the gain table
(a gain claimed only where seed ranges do not overlap), learned layer weights and gates, and cost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mirkit.bench.plots import pyplot
from mirkit.bench.render import Block, Table, write_documents
from mirkit.errors import ConfigError

COLOURS = {"baseline": "#555555", "boosted": "#1f77b4", "twin": "#ff7f0e"}


def curves_figure(summary: dict, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for system, rows in summary["systems"].items():
        fractions = sorted(rows, key=float)
        x = [float(f) for f in fractions]
        ax.plot(x, [rows[f]["mean"] for f in fractions], marker="o", color=COLOURS.get(system), label=system)
        ax.fill_between(x, [rows[f]["min"] for f in fractions], [rows[f]["max"] for f in fractions],
                        color=COLOURS.get(system), alpha=0.18)
    ax.set_xscale("log")
    ax.set_xlabel("fraction of training pieces")
    ax.set_ylabel(f"test {summary['metric']}")
    ax.set_title(f"{summary['task']}: {summary['model']} + {summary['encoder']} ({summary['fusion']})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _scores_table(summary: dict) -> Table:
    fractions = sorted({f for rows in summary["systems"].values() for f in rows}, key=float)
    rows = []
    for system, cells in summary["systems"].items():
        row = [system]
        for fraction in fractions:
            c = cells.get(fraction)
            row.append("-" if c is None else f"{c['mean']:.3f} +- {c['std']:.3f} [{c['min']:.3f}, {c['max']:.3f}]"
                       f" ({c['seeds']} seeds)")
        rows.append(row)
    pieces = {f: next((cells[f]["train_pieces"] for cells in summary["systems"].values() if f in cells), "-")
              for f in fractions}
    return Table(["system"] + [f"fraction {f} ({pieces[f]} pieces)" for f in fractions], rows)


def _gains_table(summary: dict) -> Table:
    rows = [[g["fraction"], g["system"] if g["system"] == "boosted vs twin" else f"{g['system']} vs baseline",
             f"{g['gain']:+.3f}", "yes" if g["claimed"] else "no (seed ranges overlap)" if g["seeds"] > 1
             else "no (one seed)"] for g in summary["gains"]]
    return Table(["fraction", "comparison", "mean gain", "gain claimed"], rows)


def _layers_table(run: Path, summary: dict) -> Table:
    rows = []
    for system in ("boosted", "twin"):
        for fraction, cell in summary["systems"].get(system, {}).items():
            result = next((run / "results").glob(f"{system}__f{fraction}__seed*.json"), None)
            layers = json.loads(result.read_text())["layers"] if result else []
            weights = ", ".join(f"{k}: {w:.2f}" for k, w in zip(layers, cell["layer_weights"]))
            rows.append([system, fraction, weights or "-", "-" if cell["gate"] is None else f"{cell['gate']:.3f}"])
    return Table(["system", "fraction", "layer: learned weight (mean over seeds)", "gate norm (mean; 0 = unused)"],
                 rows)


def _cost_table(run: Path, summary: dict) -> Table:
    rows = []
    for system, cells in summary["systems"].items():
        results = [json.loads(p.read_text()) for p in sorted((run / "results").glob(f"{system}__*.json"))]
        rows.append([system, f"{np.mean([c['step_s'] for c in cells.values()]) * 1000:.1f}",
                     f"{results[0]['cost']['parameters']:,}", f"{results[0]['cost']['injection_parameters']:,}",
                     f"{sum(r['cost']['train_s'] for r in results):.0f}"])
    return Table(["system", "ms per step", "parameters", "of which injection", "training time, all cells (s)"], rows)


def _references_table(summary: dict) -> Table:
    """Separation: the untrained references (HPSS, ideal ratio masks) on the same test split."""
    rows = []
    for name, ref in summary.get("references", {}).items():
        test = ref["test"]
        stems = ", ".join(f"{k.removeprefix('sdr_')} {v:.2f}" for k, v in test.items()
                          if k.startswith("sdr_"))
        note = ref["what"] + (f"; cutoff {ref['cutoff_hz']:g} Hz" if "cutoff_hz" in ref else "")
        rows.append([name, f"{test['sdr']:.2f}", f"{test['si_sdr']:.2f}", stems, note])
    return Table(["reference", "test SDR (dB)", "SI-SDR (dB)", "SDR per stem", "what"], rows)


def _regularisers(meta: dict) -> str:
    """The injected path's training regularisers of a run, as they shape every boosted and twin cell."""
    config = meta.get("config", {})
    return (f", token-out {config.get('token_out') or 0:g}, feature dropout {config.get('feature_dropout', 0):g}")


def _copied_note(run: Path) -> str:
    """Where baseline cells were copied from (``mirkit boost --baseline-from``), or ''."""
    sources = sorted({r["copied_from"] for p in (run / "results").glob("*.json")
                      if (r := json.loads(p.read_text())).get("copied_from")})
    return (f" Baseline cells were trained in {', '.join(sources)} and copied here (`--baseline-from`: the same task "
            "model, subsets, seeds and settings); their time and step cost were measured there.") if sources else ""


def _machine(meta: dict) -> str:
    machine = meta.get("provenance", {}).get("machine", {})
    if not machine:
        return "not recorded"
    return (f"{machine['cpu']}, {machine['cores']} cores, {machine['torch_threads']} torch threads"
            + (f", GPU {machine['gpu']}" if machine.get("gpu") else ""))


def write_boost_report(run_dir: str | Path) -> tuple[Path, Path]:
    """``RUN/report.md`` and ``RUN/report.html`` of a boost run."""
    run = Path(run_dir)
    try:
        summary = json.loads((run / "summary.json").read_text())
        meta = json.loads((run / "boost.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{run} is not a finished boost run ({exc}); run `mirkit boost --out {run}` first.") from None
    figure = curves_figure(summary, run / "plots" / "boost-curves.png")
    blocks: list[Block] = [
        ("h1", f"mirkit boost: {summary['task']}"),
        ("p", f"Task model {summary['model']} (input {meta['input_encoder']}), injected encoder {summary['encoder']}, "
              f"random-init twin {summary['twin']}, fusion {summary['fusion']}{_regularisers(meta)}, "
              f"{summary['seeds']} seeds per cell; "
              f"machine: {_machine(meta)}. Training fractions are "
              "chosen by piece; validation and test splits are always whole; the best step is chosen on validation "
              "and the test split is scored once." + _copied_note(run)),
        ("h2", f"Test {summary['metric']} per training fraction"),
        ("p", "mean +- std [min, max] over seeds; the band in the figure spans the seeds' min to max."),
        ("table", _scores_table(summary)), ("img", figure),
        *([("h2", "References without training (test split)"),
           ("p", "The same clips and metric; the ideal ratio masks bound what any mask of the mix's magnitude "
                 "can reach."),
           ("table", _references_table(summary))] if summary.get("references") else []),
        ("h2", "Gains"),
        ("p", "A gain is claimed only where every seed of the better system scores above every seed of the other. "
              "'twin vs baseline' is what extra capacity alone gives; 'boosted vs twin' is the value of pretraining."),
        ("table", _gains_table(summary)),
        ("h2", "Learned layer weights and gates"),
        ("table", _layers_table(run, summary)),
        ("h2", "Cost"),
        ("p", "Features come from the feature store (extracted once), so a boosted step costs about a baseline "
              "step plus the projection and fusion."),
        ("table", _cost_table(run, summary)),
    ]
    return write_documents(blocks, run)


__all__ = ["write_boost_report"]
