"""``mirkit predict`` for boost runs: a trained cell (by default the boosted system at the largest
fraction, its seed with the best validation headline) applied to new audio. The task model's input
and the injected layers are extracted into the feature store like the run's, aligned the same way,
and the frame outputs decoded as ``mirkit probe`` does (beats/downbeats/tempo, or notes)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mirkit.adapt.timed.predict import refuse_file_name, write_decoded
from mirkit.boost.data import align
from mirkit.boost.models import TASK_MODELS, build_task_model
from mirkit.boost.run import SYSTEMS, cell_id
from mirkit.errors import CheckpointError, ConfigError
from mirkit.features.extract import ExtractConfig, ExtractReport, extract
from mirkit.features.store import FeatureStore
from mirkit.kinds import frame_kind, get_kind


def best_cell(run: Path, *, system: str, fraction: float | None) -> tuple[dict, dict]:
    """``(boost.json, the chosen cell's result)``: the seed with the best validation headline."""
    try:
        meta = json.loads((run / "boost.json").read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{run} is not a boost run ({exc}); expected the --out folder of `mirkit boost`.") from None
    if system not in SYSTEMS:
        raise ConfigError(f"system={system!r} must be one of {', '.join(SYSTEMS)}.")
    results = [json.loads(p.read_text()) for p in (run / "results").glob(f"{system}__f*__seed*.json")]
    if not results:
        raise CheckpointError(f"{run} has no finished {system} cell yet; let `mirkit boost` finish.")
    fractions = sorted({r["fraction"] for r in results})
    chosen = fractions[-1] if fraction is None else fraction
    cells = [r for r in results if r["fraction"] == chosen]
    if not cells:
        raise ConfigError(f"{run} has no {system} cell at fraction {chosen:g}; it has {fractions}.")
    return meta, max(cells, key=lambda r: (r["valid"]["headline"], -r["seed"]))


def _frames(source, *, encoder: str, layers: str, store, frame_rate_hz=None, weights_dir=None, progress=True):
    report = extract(source, store=store, progress=progress,
                     config=ExtractConfig(encoder=encoder, layers=layers, pooling="none", frame_rate_hz=frame_rate_hz,
                                          weights_dir=weights_dir))
    return report, FeatureStore(store).recipe(report.recipe)


def predict_boosted(*, run_dir: str | Path, source: str | Path, store: str | Path, out_dir: str | Path,
                    system: str = "boosted", fraction: float | None = None,
                    progress: bool = True) -> tuple[ExtractReport, int]:
    """Decode every audio file of ``source`` with one trained cell; writes what ``predict_timed`` writes."""
    from safetensors.torch import load_file

    run = Path(run_dir)
    meta, cell = best_cell(run, system=system, fraction=fraction)
    refuse_file_name(out_dir, what="a boost run")
    name = cell_id(system, cell["fraction"], cell["seed"])
    state = load_file(str(run / "models" / name / "weights.safetensors"))
    spec = TASK_MODELS.get(meta["model"])
    x_mean, x_scale = state.pop("norm.x_mean").numpy(), state.pop("norm.x_scale").numpy()
    f_stats = [(state.pop(f"norm.f{k}_mean").numpy(), state.pop(f"norm.f{k}_scale").numpy())
               for k in range(len(cell["layers"] or []))]
    stems = get_kind(meta["kind"]).level == "stems"
    if stems:
        from mirkit.data.stems import STEMS

        outputs = len(STEMS) * x_mean.shape[-1]
    else:
        outputs = len(cell["classes"]) if cell.get("classes") else frame_kind(meta["kind"]).outputs
    model = build_task_model(spec, bins=x_mean.shape[-1], outputs=outputs,
                             seed=cell["seed"], inject_dims=cell["layer_dims"], fusion=cell["fusion"])
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    model.eval()
    if stems:
        return predict_stems(model, cell, meta, run_dir=run, source=source, store=store, out_dir=out_dir, system=system,
                             norms=((x_mean, x_scale), f_stats), progress=progress)
    report, inputs = _frames(source, encoder=meta["input_encoder"], layers="0", store=store, progress=progress)
    injected, usable = None, set(report.item_ids)
    if cell["layers"]:
        injected_report, injected = _frames(source, encoder=cell["source"], layers=",".join(map(str, cell["layers"])), store=store,
                              frame_rate_hz=meta.get("frame_rate_hz"),
                              weights_dir=None if system == "twin" else meta.get("weights_dir"), progress=progress)
        usable &= set(injected_report.item_ids)
        if len(usable) < len(report.item_ids):  # decoded for the input, not for the encoder
            report.skipped["encoder_failed"] += len(report.item_ids) - len(usable)
    paths = sorted(usable)
    ids = [report.item_ids[p] for p in paths]
    injected_ids = [injected_report.item_ids[p] for p in paths] if injected is not None else []
    rows = []
    for k, (x, times) in enumerate(inputs.read_frames(0, ids)):
        feats = None
        if injected is not None:
            feats = []
            for j, layer in enumerate(cell["layers"]):
                values, source_times = injected.read_frames(layer, [injected_ids[k]])[0]
                mean, scale = f_stats[j]
                feats.append(torch.from_numpy(((align(values, source_times, times) - mean) / scale)[None]
                                              .astype(np.float32)))
        with torch.no_grad():
            logits = model(torch.from_numpy(((x - x_mean) / x_scale).astype(np.float32)[None]), feats)[0]
        if cell.get("classes"):  # a clip-level tagger: every tag's probability (the whole clip as one chunk)
            probabilities = torch.sigmoid(logits).numpy()
            order = np.argsort(-probabilities[0])
            rows.append({"path": paths[k], "tags": {cell["classes"][i]: round(float(probabilities[0, i]), 4)
                                                    for i in order}})
            continue
        kind = frame_kind(meta["kind"])
        probabilities = kind.activate(logits).numpy()
        rows.append({"path": paths[k], **kind.to_row(kind.decode(probabilities, times, rate_hz=float(cell["rate_hz"])))})
    write_decoded(out_dir, rows, {"run": str(run), "system": system, "fraction": cell["fraction"],
                                  "seed": cell["seed"], "encoder": cell["source"], "task": meta["task"]},
                  None if cell.get("classes") else frame_kind(meta["kind"]))
    return report, len(rows)


@dataclass
class SeparationReport:
    """What ``mirkit predict`` says of a separation run's inputs: files separated and skipped, with reasons."""

    total: int
    separated: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items()))
        line = f"Separated {self.separated} of {self.total} files" + (f"; skipped: {reasons}" if reasons else "")
        return line + "".join(f"\n  {e}" for e in self.errors[:5])


def predict_stems(model, cell: dict, meta: dict, *, run_dir, source, store, out_dir, system: str, norms,
                  progress: bool = True) -> tuple[SeparationReport, int]:
    """Separate every audio file of ``source`` into ``OUT/NAME.<stem>.wav`` (float WAV at 22.05 kHz) with
    a trained cell; ``predictions.jsonl`` lists each file's stems. Undecodable files are skipped and named."""
    import json

    import soundfile as sf

    from mirkit.boost.separation import HOP, SAMPLE_RATE, estimates, mix_input, read_audio, stft
    from mirkit.data.stems import STEMS
    from mirkit.features.inputs import scan_inputs
    from mirkit.files import atomic_write_text

    paths, not_audio = scan_inputs(source)
    report = SeparationReport(total=len(paths) + len(not_audio))
    if not_audio:
        report.skipped["not_audio"] = len(not_audio)
    (x_mean, x_scale), f_stats = norms
    injected = None
    if cell["layers"]:
        injected_report, injected = _frames(paths, encoder=cell["source"], layers=",".join(map(str, cell["layers"])),
                                            store=store, frame_rate_hz=meta.get("frame_rate_hz"),
                                            weights_dir=None if system == "twin" else meta.get("weights_dir"),
                                            progress=progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in paths:
        try:
            mix = read_audio(path)
        except Exception as exc:  # a bad file is skipped and named, the others go on
            report.skipped["unreadable"] = report.skipped.get("unreadable", 0) + 1
            report.errors.append(f"{path}: {exc}")
            continue
        spec = stft(mix)
        times = np.arange(len(spec)) * HOP / SAMPLE_RATE
        feats = None
        if injected is not None:
            item = injected_report.item_ids.get(path)
            if item is None:
                report.skipped["encoder_failed"] = report.skipped.get("encoder_failed", 0) + 1
                continue
            feats = []
            for j, layer in enumerate(cell["layers"]):
                values, source_times = injected.read_frames(layer, [item])[0]
                mean, scale = f_stats[j]
                feats.append(torch.from_numpy(((align(values, source_times, times) - mean) / scale)[None]
                                              .astype(np.float32)))
        x = ((mix_input(spec) - x_mean) / x_scale).astype(np.float32)[None]
        with torch.no_grad():
            masks = torch.sigmoid(model(torch.from_numpy(x), feats)[0]).numpy()
        stems = {}
        for name, wave in zip(STEMS, estimates(masks, mix)):
            target = out / f"{Path(path).stem}.{name}.wav"
            tmp = target.with_name(f".{target.name}.tmp")
            sf.write(tmp, wave.astype(np.float32), SAMPLE_RATE, subtype="FLOAT", format="WAV")
            tmp.replace(target)
            stems[name] = str(target)
        rows.append({"path": path, "stems": stems})
        report.separated += 1
    facts = {"run": str(run_dir), "system": system, "fraction": cell["fraction"], "seed": cell["seed"],
             "encoder": cell["source"], "task": meta["task"]}
    atomic_write_text(out / "predictions.jsonl", "".join(json.dumps({**r, **facts}) + "\n" for r in rows))
    return report, len(rows)


__all__ = ["SeparationReport", "best_cell", "predict_boosted", "predict_stems"]
