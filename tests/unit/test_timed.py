"""Frame-level probing of the time-resolved tasks: frame targets, decoding, the probe run on the tiny
suite, and the classic peers (librosa's beat tracker, chroma templates) on the same test split."""

from __future__ import annotations

import numpy as np
import pytest

from mirkit.errors import ConfigError, UnknownNameError
from mirkit.kinds import frame_kind
from mirkit.kinds.decode import (
    beats_from_activation,
    chords_from_posteriors,
    downbeats_from_beats,
    tempo_from_activation,
)
from mirkit.kinds.labels import CHORD_CLASSES, IGNORE, chord_class


def test_beat_targets_are_widened_to_neighbouring_frames():
    times = np.arange(100) / 25.0
    target = frame_kind("beat").encode({"beats": [0.4, 1.0], "downbeats": [0.4]}, times, rate_hz=25.0)
    assert target.shape == (100, 2)
    assert list(target[8:13, 0]) == [0.0, 0.5, 1.0, 0.5, 0.0] and target[25, 0] == 1.0 and target[25, 1] == 0.0
    assert target[:, 1].sum() == 2.0  # one downbeat: 1 + two neighbours at 0.5


def test_chord_targets_reduce_to_major_minor_and_ignore_the_rest():
    assert [chord_class(x) for x in ("N", "C:maj", "A:min", "G:7", "D:min7", "B:dim", "C:aug", "X")] == \
        [0, 1, 22, 8, 15, IGNORE, IGNORE, IGNORE]
    times = np.arange(10) / 5.0
    classes = frame_kind("chords").encode({"chords": [[0.0, 1.0, "C:maj"], [1.0, 1.6, "X"]]}, times, rate_hz=5.0)
    assert list(classes) == [1] * 5 + [IGNORE] * 5  # frames after the last segment have no label either
    with pytest.raises(ConfigError, match="frame-level heads cover beat, chords"):
        frame_kind("tempo")
    with pytest.raises(UnknownNameError, match="Did you mean 'chords'"):
        frame_kind("chord")


def test_decoders_recover_beats_tempo_downbeats_and_chords():
    rate = 50.0
    times = np.arange(500) / rate
    activation = np.zeros(500)
    activation[::25] = 1.0  # a beat every 0.5 s: 120 BPM
    beats = beats_from_activation(activation, times, rate_hz=rate)
    assert np.allclose(np.diff(beats), 0.5, atol=0.021) and len(beats) >= 18
    assert abs(tempo_from_activation(activation, rate_hz=rate) - 120.0) < 3
    downbeat = np.zeros(500)
    downbeat[50::75] = 1.0  # every third beat from the second: a waltz
    found = downbeats_from_beats(beats, downbeat, times)
    assert np.allclose(np.diff(found), 1.5, atol=0.05) and abs(found[0] - 1.0) < 0.05
    assert len(beats_from_activation(np.zeros(500), times, rate_hz=rate)) == 0  # silence: no beats
    posteriors = np.full((500, len(CHORD_CLASSES)), 0.01)
    posteriors[:200, 1] = 1.0
    posteriors[200:, 22] = 1.0
    posteriors[300, :] = 0.01
    posteriors[300, 5] = 1.0  # one stray frame is smoothed away
    assert [s[2] for s in chords_from_posteriors(posteriors, times, rate_hz=rate)] == ["C:maj", "A:min"]


def test_tempo_decoding_searches_the_training_tempo_range():
    from mirkit.kinds.decode import tempo_from_activation, tempo_range

    rate = 50.0
    activation = np.zeros(int(20 * rate))
    activation[:: int(rate)] = 1.0  # beats at 60 BPM ...
    activation[int(rate / 2):: int(rate)] = 0.8  # ... with strong off-beats: 120 BPM is as plausible
    assert tempo_from_activation(activation, rate_hz=rate) == pytest.approx(120, rel=0.04)  # librosa's prior: 120
    assert tempo_from_activation(activation, rate_hz=rate, tempo_range_bpm=(50.0, 90.0)) == pytest.approx(60, rel=0.04)
    assert tempo_range([{"bpm": 72.0}, {"bpm": 180.5}, {"bpm": 90}]) == (72.0, 180.5)
    assert tempo_range([{"bpm": 72.0}, {"beats": []}]) is None and tempo_range([]) is None


def result_path_stem(run) -> str:
    return next((run / "results").glob("*.json")).stem


@pytest.mark.parametrize("head, layers", [("linear", 1), ("mlp", 1), ("linear", 3), ("mlp", 2)])
def test_stacked_heads_are_their_copies_and_keep_their_own_learning_rate(head, layers):
    import torch

    from mirkit.adapt.timed.heads import StackedFrameHeads

    stack = StackedFrameHeads(seeds=[0, 1], layers=layers, dim=8, outputs=3, head=head).eval()
    x = torch.randn(1, layers, 20, 8)
    assert torch.allclose(stack(x), torch.stack([stack.head(k)(x)[0] for k in range(2)]), atol=1e-5)
    assert not torch.allclose(stack(x)[0], stack(x)[1])  # seeded apart
    frozen = [p.detach().clone() for p in stack.copy_parameters(1)]
    optimiser = torch.optim.AdamW([{"params": stack.copy_parameters(0), "lr": 1e-2},
                                   {"params": stack.copy_parameters(1), "lr": 0.0}], weight_decay=0.0)
    stack.train()
    stack(x).square().mean().backward()
    optimiser.step()
    assert all(torch.equal(a, b) for a, b in zip(frozen, stack.copy_parameters(1)))


def test_transcription_targets_and_note_decoding_round_trip():
    from mirkit.kinds.decode import notes_from_activations
    from mirkit.metrics.transcription import note_f1

    rate = 50.0
    times = np.arange(200) / rate
    notes = [{"onset_s": 0.5, "offset_s": 1.2, "pitch": 60}, {"onset_s": 1.0, "offset_s": 2.0, "pitch": 64},
             {"onset_s": 2.5, "offset_s": 2.9, "pitch": 60}, {"onset_s": 1.0, "offset_s": 1.5, "pitch": 10}]
    target = frame_kind("transcription").encode({"notes": notes}, times, rate_hz=rate)
    assert target.shape == (200, 176) and target[:, 60 - 21].sum() == 35 + 20  # frames of both C4 notes
    assert target[25, 88 + 60 - 21] == 1.0 and target[26, 88 + 60 - 21] == 0.5  # widened onset
    found = notes_from_activations(target[:, :88], target[:, 88:], times, rate_hz=rate)
    reference = [(n["onset_s"], n["offset_s"], n["pitch"]) for n in notes[:3]]  # pitch 10 is off the keyboard
    assert note_f1(reference, found, with_offsets=True)["f1"] == 1.0
    assert notes_from_activations(np.zeros((200, 88)), np.zeros((200, 88)), times, rate_hz=rate) == []


