"""Opt-in: the musicnn port against the TensorFlow original on the same input (MIRKIT_REFERENCE=1).

Needs a separate venv with tensorflow-cpu + tf_keras + musicnn (see musicnn_tf_reference.py);
point MIRKIT_TF_PYTHON at its python (default /tmp/tfref/bin/python).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

TF_PYTHON = os.environ.get("MIRKIT_TF_PYTHON", "/tmp/tfref/bin/python")
pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(os.environ.get("MIRKIT_REFERENCE") != "1",
                       reason="reference tier is opt-in: set MIRKIT_REFERENCE=1 (needs a TensorFlow venv)"),
]


@pytest.mark.parametrize("dataset", ["mtt", "msd"])
def test_port_matches_tensorflow_original(tmp_path: Path, dataset: str):
    if not Path(TF_PYTHON).exists():
        pytest.fail(f"MIRKIT_REFERENCE=1 but no TensorFlow python at {TF_PYTHON}; set MIRKIT_TF_PYTHON")
    from mirkit.encoders import load_encoder

    encoder = load_encoder(f"musicnn-{dataset}")
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 9) / 16000
    audio = (0.4 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) + 0.05 * rng.standard_normal(len(t)))
    with torch.inference_mode():
        mel = encoder.log_mel(torch.tensor(audio, dtype=torch.float32)[None])[0]
        patches = mel[: 3 * 187].reshape(3, 187, 96)
        ours = encoder.net(patches)
    np.savez(tmp_path / "in.npz", patches=patches.numpy())
    subprocess.run([TF_PYTHON, str(Path(__file__).with_name("musicnn_tf_reference.py")), str(tmp_path / "in.npz"),
                    str(tmp_path / "out.npz"), f"{dataset.upper()}_musicnn"], check=True)
    ref = np.load(tmp_path / "out.npz")
    frontend = np.concatenate([ref["timbral"], ref["temporal"]], axis=-1)
    pairs = {"frontend": (ours[0], frontend), "cnn1": (ours[1], ref["cnn1"]), "cnn2": (ours[2], ref["cnn2"]),
             "cnn3": (ours[3], ref["cnn3"]), "mean_pool": (ours[4], ref["mean_pool"]),
             "max_pool": (ours[5], ref["max_pool"]), "penultimate": (ours[6], ref["penultimate"]),
             "logits": (ours[7], ref["logits"])}
    worst = {}
    for name, (mine, theirs) in pairs.items():
        mine = mine.numpy()
        assert mine.shape == theirs.shape, (name, mine.shape, theirs.shape)
        worst[name] = float(np.abs(mine - theirs).max() / max(1.0, np.abs(theirs).max()))
    print("max |port - tf| / max(1, |tf|):", worst)
    assert max(worst.values()) < 1e-4, worst
