"""``boost_task``: a task model with and without injected foundation features, across training fractions.

Three systems per (fraction, seed) cell: ``baseline`` (the task model alone), ``boosted`` (features of
``encoder`` injected) and ``twin`` (features of its random-init twin ``random:<encoder>`` injected:
the same extra capacity without pretraining). Layout of ``RUN``::

    boost.json                         what is trained (task, model, encoder, settings)
    results/<system>__f<fraction>__seed<k>.json   one per cell: scores, history, gate, layer weights, cost
    models/<system>__f<fraction>__seed<k>/        weights.safetensors (+ standardisation) of that cell
    summary.json                       per system and fraction: test mean/std/min/max over seeds; gains

A cell whose result exists is skipped on rerun, so a killed run continues where it stopped. A gain is
*claimed* only where the boosted seeds' range lies above the baseline's (no overlap); the twin's
own gain says how much of it extra capacity alone explains.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mirkit.boost.data import BoostData, injected_layers, load_injected, load_inputs, training_subset
from mirkit.boost.models import TASK_MODELS, build_task_model
from mirkit.boost.train import BoostConfig, Cell, train_cell
from mirkit.data.label_rules import check_rules
from mirkit.data.task_folder import load_task
from mirkit.errors import CheckpointError, ConfigError
from mirkit.files import atomic_write_bytes, atomic_write_json
from mirkit.kinds import frame_kind, get_kind
from mirkit.provenance import provenance

FORMAT_VERSION = 1
SYSTEMS = ("baseline", "boosted", "twin")


def twin_of(encoder: str) -> str:
    return f"random:{encoder}"


def cell_id(system: str, fraction: float, seed: int) -> str:
    return f"{system}__f{fraction:g}__seed{seed}"


def boost_task(*, task_dir: str | Path, model: str, encoder: str, out_dir: str | Path, store: str | Path,
               config: BoostConfig | None = None, seeds: int = 3, weights_dir: str | None = None,
               frame_rate_hz: float | None = None, device: str = "cpu", baseline_from: str | Path | None = None,
               progress: bool = True) -> dict[str, object]:
    """Train every (system, fraction, seed) cell not yet done and write ``RUN/summary.json`` (returned).

    ``baseline_from``: another boost run of the same task, task model and settings (any encoder): its
    finished baseline cells are copied instead of trained again. The baseline never sees an encoder, so
    they are the cells this run would train (the same subset, seed and steps; tested).

    Raises:
        ConfigError: before any training: an unknown model, a model for another task, an encoder with no
            layer fast enough to align with the task's frames, bad fractions or settings, a
            ``baseline_from`` run of another task, model or settings.
    """
    config = config or BoostConfig()
    config.validate()
    if seeds < 1:
        raise ConfigError(f"seeds={seeds}: need at least 1 (3 for seed ranges).")
    task_dir, out = Path(task_dir), Path(out_dir)
    spec = TASK_MODELS.get(model)
    task = load_task(task_dir)
    kind, label = task.kind.name, task.label
    if kind != spec.kind:
        raise ConfigError(f"--model {model!r} solves {spec.kind} tasks, and {task_dir.name!r} is a {kind} task; "
                          f"choose one of {[n for n, s in TASK_MODELS.items() if s.kind == kind] or 'none yet'}.")
    if encoder.startswith("random:"):
        raise ConfigError(f"--encoder {encoder!r} is itself a random-init twin; boost a pretrained encoder (its twin "
                          "runs as the third system).")
    if config.token_out is None:  # the model's default, stored as a number
        config = replace(config, token_out=spec.token_out)
    if config.crop_s < spec.min_crop_s:
        raise ConfigError(f"--crop-s {config.crop_s:g} is shorter than {model!r} takes ({spec.min_crop_s:g} s).")
    fractions = config.fraction_values()
    for source in (encoder, twin_of(encoder)):  # a clip-level encoder on a frame task: refused before any work
        injected_layers(source, kind, config.layers, frame_rate_hz=frame_rate_hz)
    meta = {"format_version": FORMAT_VERSION, "task": task_dir.name, "task_dir": str(task_dir.resolve()), "kind": kind,
            "model": model, "input_encoder": spec.input_encoder, "encoder": encoder, "twin": twin_of(encoder),
            "weights_dir": weights_dir, "frame_rate_hz": frame_rate_hz, "config": dict(config.__dict__),
            "store": str(Path(store).resolve()), "provenance": provenance()}
    source_run = _check_baseline_source(Path(baseline_from), meta) if baseline_from is not None else None
    _claim(out, meta)
    check_rules(task_dir.name, label, config.augment_names())  # no label may change silently
    if task.kind.level == "stems" and config.augment_names():
        raise ConfigError(f"--augment {config.augment!r}: the booster's augmented copies change the mix only, and a "
                          "separation model's stems would no longer add up to it; drop --augment for separation.")
    original, data, augmented = _training_data(task_dir, kind=kind, label=label, spec=spec, config=config,
                                                store=store, out=out, progress=progress)
    for fraction in fractions:  # a subset that loses a class is refused before any cell trains
        for seed in range(seeds):
            training_subset(data.splits["train"], fraction=fraction, seed=seed, targets=data.targets)
    systems = {"baseline": None, "boosted": encoder, "twin": twin_of(encoder)}
    copied = _copy_baselines(source_run, out, fractions=fractions, seeds=seeds) if source_run is not None else 0
    trained = 0
    for system, source in systems.items():
        todo = [(f, s) for f in fractions for s in range(seeds)
                if not (out / "results" / f"{cell_id(system, f, s)}.json").is_file()]
        if not todo:
            continue
        feats = None
        if source is not None:
            injected = dict(encoder=source, kind=kind, layers=config.layers, store=store, out=out,
                            weights_dir=None if system == "twin" else weights_dir, frame_rate_hz=frame_rate_hz,
                            device=device, progress=progress)
            feats = load_injected(original, task_dir, **injected)
            if augmented is not None:
                feats.frames.update(load_injected(augmented[1], augmented[0], **injected).frames)
        for fraction, seed in todo:
            _train_one(data, feats, system=system, fraction=fraction, seed=seed, spec=spec, config=config, out=out,
                       meta=meta, progress=progress)
            trained += 1
    summary = summarise(out, fractions=fractions, seeds=seeds, meta=meta)
    if task.kind.level == "stems":
        summary["references"] = _separation_references(out, data)
    summary["cells"] = {"trained": trained, "copied": copied,
                        "reused": len(systems) * len(fractions) * seeds - trained - copied}
    summary["skipped_clips"] = data.skipped
    atomic_write_json(out / "summary.json", summary)
    return summary


def _training_data(task_dir: Path, *, kind: str, label: str, spec, config: BoostConfig, store, out: Path,
                   progress: bool) -> tuple[BoostData, BoostData, tuple[Path, BoostData] | None]:
    """``(original, data, augmented)``: the task's inputs, the same with the augmented training copies
    joined (when ``--augment``), and the copies' folder and inputs (or ``None``)."""
    if get_kind(kind).level == "stems":  # the input is the mix's STFT, computed from the audio (its phase is needed too)
        from mirkit.boost.separation import load_separation

        data = load_separation(task_dir, progress=progress)
    else:
        data = load_inputs(task_dir, kind=kind, input_encoder=spec.input_encoder, store=store, out=out,
                           progress=progress)
    augmented = None
    if config.augment_names():  # offline copies of the training clips, their inputs read like the originals'
        from mirkit.data.augmented import write_augmented_copies

        aug_dir = write_augmented_copies(task_dir, out / "augmented", names=config.augment_names(),
                                         copies=config.augment_copies, label_name=label, progress=progress)
        augmented = (aug_dir, load_inputs(aug_dir, kind=kind, input_encoder=spec.input_encoder, store=store, out=out,
                                          only=("train",), targets_of=data, progress=progress))
    original = data
    if augmented is not None:
        data = replace(data, splits={**data.splits, "train": data.splits["train"] + augmented[1].splits["train"]},
                       skipped=data.skipped + augmented[1].skipped)
    return original, data, augmented


def _claim(out: Path, meta: dict[str, object]) -> None:
    path = out / "boost.json"
    if path.is_file():
        old = json.loads(path.read_text())
        keys = ("task", "model", "encoder", "frame_rate_hz", "config")
        differ = [k for k in keys if k != "config" and old.get(k) != meta[k]]
        differ += _config_differences(old, meta, ignore=("fractions",))
        if differ:
            raise CheckpointError(f"{out} holds a boost run with other {', '.join(differ)}; use another --out, or "
                                  "delete it to start over (other --fractions may be added to a run).")
    atomic_write_json(path, meta)


def _config_differences(old: dict, meta: dict, *, ignore: tuple[str, ...]) -> list[str]:
    """``config.KEY`` for each setting of ``meta`` that the recorded run ``old`` has otherwise."""
    before = {"augment": "none", "augment_copies": 1, "feature_dropout": 0.0}  # runs made before these settings existed
    return [f"config.{k}" for k, v in meta["config"].items()
            if k not in ignore and old.get("config", {}).get(k, before.get(k)) != v]


def _check_baseline_source(source: Path, meta: dict[str, object]) -> Path:
    """``source`` is a boost run whose baseline cells this run would train identically, or a ConfigError."""
    path = source / "boost.json"
    if not path.is_file():
        raise ConfigError(f"--baseline-from {source}: no boost run there (no boost.json); name a finished "
                          "`mirkit boost` run folder of the same task and model.")
    other = json.loads(path.read_text())
    differ = [k for k in ("format_version", "task_dir", "kind", "model", "input_encoder") if other.get(k) != meta[k]]
    differ += _config_differences(other, meta, ignore=("fractions", "token_out", "feature_dropout"))
    if differ:
        raise ConfigError(f"--baseline-from {source}: that run has other {', '.join(differ)} than this one, so its "
                          "baseline cells are not this run's; drop --baseline-from or run with its settings.")
    return source


def _copy_baselines(source: Path, out: Path, *, fractions: list[float], seeds: int) -> int:
    """Copy ``source``'s finished baseline cells that ``out`` lacks (weights first, the result last: a
    result file marks a finished cell). Returns how many were copied."""
    import shutil

    copied = 0
    for fraction in fractions:
        for seed in range(seeds):
            name = cell_id("baseline", fraction, seed)
            result, weights = source / "results" / f"{name}.json", source / "models" / name
            if (out / "results" / f"{name}.json").is_file() or not (result.is_file() and weights.is_dir()):
                continue
            staging = out / "models" / f".{name}.copying"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(weights, staging)
            shutil.rmtree(out / "models" / name, ignore_errors=True)
            staging.rename(out / "models" / name)
            record = json.loads(result.read_text())
            record["copied_from"] = str(source.resolve())
            atomic_write_json(out / "results" / f"{name}.json", record)
            copied += 1
    return copied


def _train_one(data: BoostData, feats, *, system: str, fraction: float, seed: int, spec, config: BoostConfig,
               out: Path, meta: dict[str, object], progress: bool) -> None:
    import torch
    from safetensors.torch import save

    train = training_subset(data.splits["train"], fraction=fraction, seed=seed, targets=data.targets)
    cell = Cell(train, data.splits["valid"], data.splits["test"], None if feats is None else feats.frames,
                targets=data.targets)
    outputs = data.targets.output_dim if data.targets is not None else _outputs(spec.kind, bins=data.bins)
    net = build_task_model(spec, bins=data.bins, outputs=outputs, seed=seed,
                           inject_dims=None if feats is None else feats.dims, fusion=config.fusion,
                           token_out=config.token_out, feature_dropout=config.feature_dropout)
    name = cell_id(system, fraction, seed)
    started = time.perf_counter()
    result = train_cell(net, cell, kind=spec.kind, config=config, rate_hz=data.rate_hz, seed=seed, progress=progress,
                        label=name)
    norm = result.pop("standardisation")
    state = {f"model.{k}": v.detach().contiguous() for k, v in net.state_dict().items()}
    state["norm.x_mean"], state["norm.x_scale"] = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
                                                   for a in (norm.x_mean, norm.x_scale))
    for k, (mean, scale) in enumerate(norm.f_stats):
        state[f"norm.f{k}_mean"] = torch.from_numpy(np.ascontiguousarray(mean, dtype=np.float32))
        state[f"norm.f{k}_scale"] = torch.from_numpy(np.ascontiguousarray(scale, dtype=np.float32))
    record = {"system": system, "source": None if feats is None else feats.encoder, "fraction": fraction, "seed": seed,
              "task": meta["task"], "kind": meta["kind"], "model": meta["model"], "fusion": config.fusion,
              "train_clips": len(train), "train_pieces": len({c.piece for c in train}),
              "classes": data.targets.classes if data.targets is not None else None,
              "layers": None if feats is None else feats.layers, "layer_dims": None if feats is None else feats.dims,
              "rate_hz": data.rate_hz, "wall_s": round(time.perf_counter() - started, 2), **result}
    folder = out / "models" / name
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "weights.safetensors", save(state))
    atomic_write_json(folder / "cell.json", {k: record[k] for k in ("system", "source", "fraction", "seed", "layers",
                                                                    "layer_dims", "rate_hz", "fusion", "model",
                                                                    "classes")})
    atomic_write_json(out / "results" / f"{name}.json", record)


def _outputs(kind: str, *, bins: int = 0) -> int:
    """Output units of a frame task model (a separation model: one mask per stem and input bin)."""
    if get_kind(kind).level == "stems":
        from mirkit.data.stems import STEMS

        return len(STEMS) * bins
    return frame_kind(kind).outputs


def _separation_references(out: Path, data: BoostData) -> dict[str, object]:
    """HPSS and ideal-ratio-mask scores on the test split, computed once and kept in the run folder."""
    import json

    path = out / "references.json"
    if path.is_file():
        return json.loads(path.read_text())
    from mirkit.boost.separation import references

    result = references(data.splits)
    atomic_write_json(path, result)
    return result


def summarise(out: Path, *, fractions: list[float], seeds: int, meta: dict[str, object]) -> dict[str, object]:
    """Per system and fraction the test headline over seeds, and the gains over the baseline."""
    table: dict[str, dict[str, dict[str, object]]] = {}
    for system in SYSTEMS:
        for fraction in fractions:
            runs = [json.loads(p.read_text()) for s in range(seeds)
                    if (p := out / "results" / f"{cell_id(system, fraction, s)}.json").is_file()]
            if not runs:
                continue
            values = np.array([r["test"]["headline"] for r in runs])
            table.setdefault(system, {})[f"{fraction:g}"] = {
                "seeds": len(runs), "mean": float(values.mean()), "std": float(values.std()),
                "min": float(values.min()), "max": float(values.max()),
                "valid_mean": float(np.mean([r["valid"]["headline"] for r in runs])),
                "train_pieces": runs[0]["train_pieces"], "step_s": float(np.mean([r["cost"]["step_s"] for r in runs])),
                "layer_weights": np.mean([r["layer_weights"] for r in runs], axis=0).tolist() if runs[0]["layer_weights"] else [],
                "gate": float(np.mean([r["gate"] for r in runs])) if runs[0]["gate"] is not None else None}
    gains = []
    for fraction in (f"{f:g}" for f in fractions):
        base = table.get("baseline", {}).get(fraction)
        for system in ("boosted", "twin"):
            row = table.get(system, {}).get(fraction)
            if base is None or row is None:
                continue
            gains.append({"fraction": fraction, "system": system, "gain": row["mean"] - base["mean"],  # type: ignore[operator]
                          "claimed": bool(row["seeds"] > 1 and row["min"] > base["max"]),  # type: ignore[operator]
                          "seeds": min(row["seeds"], base["seeds"])})  # type: ignore[type-var]
        boosted, twin = table.get("boosted", {}).get(fraction), table.get("twin", {}).get(fraction)
        if boosted and twin:
            gains.append({"fraction": fraction, "system": "boosted vs twin", "gain": boosted["mean"] - twin["mean"],  # type: ignore[operator]
                          "claimed": bool(boosted["seeds"] > 1 and boosted["min"] > twin["max"]),  # type: ignore[operator]
                          "seeds": min(boosted["seeds"], twin["seeds"])})  # type: ignore[type-var]
    return {"task": meta["task"], "kind": meta["kind"], "model": meta["model"], "encoder": meta["encoder"],
            "twin": meta["twin"], "fusion": meta["config"]["fusion"], "seeds": seeds,  # type: ignore[index]
            "metric": _metric_name(str(meta["kind"])),
            "systems": table, "gains": gains}


def _metric_name(kind: str) -> str:
    """The headline's name as the boost report prints it (SDR with its unit)."""
    spec = get_kind(kind)
    return f"{spec.headline} (dB)" if spec.level == "stems" else spec.headline


__all__ = ["SYSTEMS", "boost_task", "cell_id", "summarise", "twin_of"]
