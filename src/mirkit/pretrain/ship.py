"""Ship a pretrained encoder inside mirkit: copy an encoder folder of a ``mirkit pretrain`` run into
``mirkit/encoders/shipped/<name>/`` with a model card written from the run's own records.

Every fact on the card is read from a file, never typed in: the architecture and parameter count
from the weights, the objective and steps from the checkpoint's ``mirkit-encoder.json``, the corpus
hours, sources, licences and soundfonts from the corpus's ``corpus.json``, the training time and
speed from the run's ``history.jsonl`` (the sum of the step times up to the shipped step; checkpoint
writes are not counted). Scores come from a ``mirkit bench`` results folder when one is given. A
corpus with any licence outside ``CLEAN_LICENCES`` is refused unless ``allow_any_licence``.

Used by ``scripts/ship_encoder.py``; :func:`mirkit.encoders.zoo.register_shipped` registers the result.
"""

from __future__ import annotations

import json
from pathlib import Path

from mirkit.encoders.mel_config import SPEC_FILE, WEIGHTS_FILE, read_folder_info
from mirkit.errors import ConfigError
from mirkit.files import atomic_write_bytes, atomic_write_json, atomic_write_text, read_jsonl

CARD_FILE = "MODEL_CARD.md"
MAX_WEIGHTS_MB = 25.0
WEIGHTS_LICENCE = "Apache-2.0"


def clean_licences() -> tuple[str, ...]:
    """The corpus licence statements a shipped model may be trained on: mirkit's and MMA's output."""
    from mirkit.data.corpus import GENERATED_LICENCE, MMA_LICENCE

    return (GENERATED_LICENCE, MMA_LICENCE)


def training_time(history: list[dict], *, upto_step: int, audio_per_step_s: float) -> dict[str, float]:
    """Summed step time over a run's ``history.jsonl`` rows up to ``upto_step`` (the last record of a step
    wins: a resumed run rewrites the steps after its checkpoint); each row's ``audio_s_per_s`` is
    ``audio_per_step_s`` over that step's time."""
    steps = {int(row["step"]): row for row in history if int(row["step"]) <= upto_step}
    seconds = sum(audio_per_step_s / r["audio_s_per_s"] for r in steps.values() if r.get("audio_s_per_s", 0) > 0)
    return {"steps_recorded": len(steps), "step_time_s": round(seconds, 1),
            "audio_s_per_s": round(audio_per_step_s * len(steps) / seconds, 1) if seconds else 0.0}


def parameter_count(folder: Path) -> int:
    """Trainable parameters of the encoder in ``folder`` (buffers such as the mel filterbank not counted)."""
    from mirkit.encoders import load_encoder

    encoder = load_encoder(str(folder))
    return sum(p.numel() for p in encoder.parameters())


def ship_encoder(*, checkpoint: str | Path, run_dir: str | Path, name: str, dest_root: str | Path, machine: str,
                 commands: list[str], scores_md: str = "", allow_any_licence: bool = False) -> Path:
    """Copy ``checkpoint`` (an encoder folder of ``run_dir``) to ``dest_root/name`` with its model card."""
    checkpoint, run_dir = Path(checkpoint), Path(run_dir)
    if not name.startswith("mirkit-"):
        raise ConfigError(f"name={name!r}: mirkit's own encoders are named mirkit-..., e.g. mirkit-mel-small.")
    info = read_folder_info(checkpoint)
    weights = checkpoint / WEIGHTS_FILE
    size_mb = weights.stat().st_size / 1e6
    if size_mb > MAX_WEIGHTS_MB:
        raise ConfigError(f"{weights}: {size_mb:.1f} MB is over the {MAX_WEIGHTS_MB:g} MB that may ship inside "
                          "mirkit; choose a smaller preset.")
    run = json.loads((run_dir / "run.json").read_text())
    corpus_dir = Path(run["corpus"])
    corpus = json.loads((corpus_dir / "corpus.json").read_text())
    unclean = sorted(set(corpus["licences"]) - set(clean_licences()))
    if unclean and not allow_any_licence:
        raise ConfigError(f"corpus {corpus_dir} holds audio under {unclean[:3]}{'...' if len(unclean) > 3 else ''}, not "
                          "only mirkit's and MMA's output; build one with `mirkit data corpus --sources generated,mma "
                          "--soundfonts musescore`, or pass allow_any_licence=True for a model you will not ship.")
    pretrain = dict(info.get("pretrain", {}))
    step = int(pretrain.get("step", 0))
    audio_per_step_s = float(pretrain["batch_size"]) * float(pretrain["accumulate"]) * float(pretrain["crop_s"])
    timing = training_time(read_jsonl(run_dir / "history.jsonl"), upto_step=step, audio_per_step_s=audio_per_step_s)
    dest = Path(dest_root) / name
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest / WEIGHTS_FILE, weights.read_bytes())
    params = parameter_count(checkpoint)
    description = (f"mirkit's own {pretrain.get('arch')}/{pretrain.get('preset')} music encoder: {params / 1e6:.2f}M "
                   f"parameters, {step} steps of masked prediction ({pretrain.get('targets')} targets) on "
                   f"{corpus['hours']} h of licence-clean generated music")
    facts = {"parameters": params, "corpus": {k: corpus[k] for k in ("hours", "hours_by_source", "pieces", "licences",
                                                                       "soundfonts", "seed") if k in corpus},
             "corpus_manifest_sha256": run.get("corpus_manifest_sha256"), "training": timing, "machine": machine,
             "commands": commands, "schedule_changes": run.get("schedule_changes", [])}
    atomic_write_json(dest / SPEC_FILE, {**info, "name": name, "licence": WEIGHTS_LICENCE, "description": description,
                                         "source": f"mirkit pretrain (run {run_dir.name}, step {step}); see {CARD_FILE}",
                                         "shipped": facts})
    atomic_write_text(dest / CARD_FILE, model_card(name=name, info=info, facts=facts, size_mb=size_mb,
                                                   scores_md=scores_md))
    return dest


def model_card(*, name: str, info: dict, facts: dict, size_mb: float, scores_md: str) -> str:
    pretrain, arch, corpus = info.get("pretrain", {}), info["architecture"], facts["corpus"]
    timing = facts["training"]
    hours = timing["step_time_s"] / 3600
    by_source = ", ".join(f"{k} {v} h" for k, v in corpus.get("hours_by_source", {}).items())
    lines = [
        f"# {name}", "",
        f"mirkit's own pretrained music encoder. Load it with `load_encoder(\"{name}\")` or pass "
        f"`--encoder {name}` to any command; `random:{name}` is its random-init twin (same architecture, seed 0).", "",
        "## Model", "",
        f"- Architecture: mel transformer ({arch['n_mels']} log-mel bands at {arch['sample_rate']} Hz, hop "
        f"{arch['hop']}, {arch['stack']} frames per token = {arch['sample_rate'] / (arch['hop'] * arch['stack']):g} "
        f"tokens/s; {arch['layers']} pre-norm transformer blocks, width {arch['dim']}, {arch['heads']} heads, "
        f"feed-forward {arch['ffn']}, depthwise-convolution position encoding of {arch['pos_kernel']} tokens).",
        f"- Parameters: {facts['parameters']:,} ({size_mb:.1f} MB of float32 safetensors, buffers included).",
        f"- Layers returned: the token projection and each of the {arch['layers']} blocks "
        f"({arch['layers'] + 1} layers, {arch['dim']}-d).", "",
        "## Training", "",
        f"- Objective: masked prediction (HuBERT/MERT): spans of {pretrain.get('mask_span')} tokens masked with "
        f"probability {pretrain.get('mask_prob')}, cross-entropy on masked tokens against **{pretrain.get('targets')}** "
        f"targets ({pretrain.get('codebooks')} codebook(s) of {pretrain.get('codebook_size')}), plus MERT's CQT "
        f"reconstruction (weight {pretrain.get('cqt_weight')}) and in-batch mixing (probability {pretrain.get('mix_prob')}).",
        f"- Steps: {pretrain.get('step')} of a {pretrain.get('steps')}-step schedule; batch {pretrain.get('batch_size')} x "
        f"{pretrain.get('accumulate')} crops of {pretrain.get('crop_s')} s; AdamW, peak learning rate "
        f"{pretrain.get('learning_rate')}, {pretrain.get('warmup_steps')} warm-up steps then cosine decay; seed "
        f"{pretrain.get('seed')}."
        + "".join(f" The run was resumed at step {c['at_step']} with its schedule changed from {c['from_steps']} to "
                  f"{c['to_steps']} steps (the cosine decay recomputed from there)."
                  for c in facts.get("schedule_changes", [])),
        f"- Training time: {hours:.2f} h of summed step time ({int(timing['steps_recorded'])} steps recorded in "
        f"history.jsonl, {timing['audio_s_per_s']} audio-s/s; checkpoint writes not counted) on {facts['machine']}.", "",
        "## Corpus", "",
        f"- {corpus.get('hours')} h ({by_source}), {corpus.get('pieces')} pieces, seed {corpus.get('seed')}; "
        f"soundfonts: {', '.join(corpus.get('soundfonts', {}).get('used', []))} (MuseScore General: MIT).",
        "- Provenance: every piece is new music drawn at random by mirkit (`generated`: progressions, bass, "
        "melody, drums) or by MMA's groove library (`mma`) from mirkit's chord charts, rendered by mirkit; no "
        "recording, score encoding or dataset of anyone else is in it, and no suite test piece.",
        "- Licences recorded in the corpus manifest:",
        *[f"  - {count} chunks: {text}" for text, count in corpus.get("licences", {}).items()],
        f"- Manifest sha256: `{facts.get('corpus_manifest_sha256')}`.", "",
        "## Licence", "",
        f"The weights are released under {WEIGHTS_LICENCE}, like mirkit.", "",
        "## Reproduce", "", "```bash", *facts["commands"], "```", "",
        "## Scores", "",
        scores_md.strip() or "Not benchmarked yet.", "",
    ]
    return "\n".join(lines)


__all__ = ["CARD_FILE", "clean_licences", "model_card", "ship_encoder", "training_time"]
