"""``mirkit demo``: a one-minute look at extraction and tags.

Writes the built-in clips, extracts every layer with the bench's default offline encoders, and prints
musicnn's top tags per clip (a real model's real predictions) plus where the features are.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    from mirkit.bench.config import DEFAULT_ENCODERS

    parser = commands.add_parser("demo", help="extract the built-in clips with the default offline encoders")
    parser.add_argument("--out", default="runs/demo", help="output folder (audio/, store/)")
    parser.add_argument("--encoders", default=",".join(DEFAULT_ENCODERS),
                        help="comma-separated encoder names (default: the bench's)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import soundfile as sf
    from scipy.special import expit

    from mirkit.audio.synth import demo_clips
    from mirkit.features.extract import ExtractConfig, extract
    from mirkit.features.store import FeatureStore

    out = Path(args.out)
    audio_dir = out / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    for name, clip in demo_clips().items():
        path = audio_dir / f"{name}.wav"
        if not path.exists():
            sf.write(path, clip, 22050, subtype="PCM_16")
    store = FeatureStore(out / "store")
    failures = 0
    reports = {}
    for encoder in [e.strip() for e in args.encoders.split(",") if e.strip()]:
        report = extract(audio_dir, store=store, config=ExtractConfig(encoder=encoder))
        reports[encoder] = report
        print(f"[{encoder}] {report.summary()}")
        failures += report.num_skipped
    if "musicnn-mtt" in reports:
        from mirkit.encoders.musicnn import tag_names

        report = reports["musicnn-mtt"]
        items = store.find(encoder="musicnn-mtt")[0]
        tags = tag_names("mtt")
        print("\nmusicnn-mtt top tags (sigmoid of layer 7):")
        for path, item_id in sorted(report.item_ids.items()):
            logits = items.read(item_id)[0]["pooled_7"]
            top = np.argsort(-logits)[:3]
            probs = expit(logits[top])
            print(f"  {Path(path).name:<22} " + ", ".join(f"{tags[i]} {p:.2f}" for i, p in zip(top, probs)))
    print(f"\nFeatures of {len(reports)} encoders are in {store.root} (`mirkit cache list --store {store.root}`).")
    return 1 if failures else 0
