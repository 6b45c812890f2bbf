"""`mirkit tune` on the time-resolved tasks: every method trains a frame-level head with the encoder in
the graph, crops carry their labels, evaluation covers whole clips, runs resume bit for bit and predict
beats, chords and notes for new audio. Tiny encoders and the tiny rendered suite; CPU only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mirkit.encoders import load_encoder
from mirkit.errors import ConfigError
from mirkit.kinds import frame_kind
from mirkit.tune import TuneConfig
from mirkit.tune.timed import FrameTuneModel, choose_frame_layers, covering_windows
from mirkit.tune.timed_loop import frame_outputs

FAST = TuneConfig(max_epochs=1, batch_size=4, crop_s=1.5, checkpoint_every=2)
TASKS = ("beat", "chords", "transcription")


def test_covering_windows_reach_the_end_of_every_clip():
    assert covering_windows(3, window_samples=4) == [0]
    assert covering_windows(8, window_samples=4) == [0, 4]
    assert covering_windows(10, window_samples=4) == [0, 4, 6]  # the last window ends with the clip
    assert covering_windows(11, window_samples=4, hop_samples=2) == [0, 4, 6]  # ... or starts on the frame grid


def test_frame_outputs_join_windows_into_one_time_line():
    model = FrameTuneModel(load_encoder("tiny-test"), [2], kind=frame_kind("beat"))
    rate = 8000
    waves = [np.random.default_rng(0).standard_normal(int(2.3 * rate)).astype(np.float32) * 0.1,
             np.zeros(int(0.5 * rate), dtype=np.float32)]
    outputs = frame_outputs(model, waves, window_samples=rate, batch_size=2, device=torch.device("cpu"),
                            method="probe")
    for (logits, times), wave in zip(outputs, waves):
        assert logits.shape == (len(times), 2) and np.all(np.diff(times) > 0)
        assert times[0] == 0 and np.allclose(np.diff(times), 1 / 125)  # one grid, no repeats or gaps
        assert len(wave) / rate - times[-1] <= 2 / 125 + 1e-9  # up to the clip's last frame
    # a frame's output does not depend on which window it came from: the model sees it in context only
    # within its window, so compare against one pass over the first window
    first = model(torch.from_numpy(waves[0][:rate])[None], torch.tensor([rate]))[0][0].detach().numpy()
    assert np.allclose(outputs[0][0][: len(first)], first, atol=1e-5)


def test_frame_layers_are_those_fast_enough_for_the_task():
    musicnn = load_encoder("random:musicnn-mtt").spec
    slow = [i for i, layer in enumerate(musicnn.layers) if layer.frame_rate_hz < 20]
    chosen = choose_frame_layers(musicnn, "auto", frame_kind("beat"))
    assert len(chosen) == 1 and chosen[0] not in slow and musicnn.layers[chosen[0]].frame_rate_hz >= 20
    with pytest.raises(ConfigError, match="below the 20 fps the beat task needs"):
        choose_frame_layers(musicnn, str(slow[0]), frame_kind("beat"))
    assert choose_frame_layers(load_encoder("tiny-test").spec, "weighted", frame_kind("chords")) == [0, 1]  # the 16-wide pair


CNN_METHODS = ["probe", "finetune", "adapter", "lora", "dora", "bitfit", "scratch"]


