"""The ``basic-pitch`` peer: Spotify's basic-pitch (Bittner et al., ICASSP 2022; Apache-2.0) on the
transcription task, run from the ONNX model inside the ``basic-pitch`` wheel with onnxruntime, with
no TensorFlow and without importing the package (its Python code needs TensorFlow-era dependencies).

Facts from basic-pitch 0.4.0 (``constants.py``, ``inference.py``): mono audio at 22,050 Hz, windows
of 43,844 samples overlapping by 30 frames of 256 samples, the signal padded with 15 frames of
silence in front; the model returns per window 172 frames x 88 keys of note ("StatefulPartitionedCall:1")
and onset ("...:2") posteriors at 22,050 / 256 frames per second; half the overlap is cut from each
end of each window. Notes are decoded by mirkit's own decoder with basic-pitch's default thresholds
(onset 0.5, frame 0.3, shortest note 127.7 ms), not by basic-pitch's note_creation (no "melodia"
trick, no onsets inferred from energy), so its F1 can differ a little from basic-pitch's own CLI.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from mirkit.errors import MirkitError

SAMPLE_RATE = 22050
HOP = 256
WINDOW = 2 * SAMPLE_RATE - HOP  # 43,844 samples
OVERLAP_FRAMES = 30
MIN_NOTE_S = 0.1277


def model_path() -> Path:
    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        raise MirkitError("peer 'basic-pitch' needs the basic-pitch wheel (Apache-2.0): "
                          "pip install --no-deps basic-pitch==0.4.0")
    path = Path(list(spec.submodule_search_locations)[0]) / "saved_models" / "icassp_2022" / "nmp.onnx"
    if not path.is_file():
        raise MirkitError(f"{path} is missing from the installed basic-pitch; reinstall basic-pitch==0.4.0.")
    return path


@lru_cache(maxsize=1)
def _session():
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])


def posteriors(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(note, onset)`` posteriors, each ``(frames, 88)``, of mono audio at 22,050 Hz."""
    overlap = OVERLAP_FRAMES * HOP
    audio = np.concatenate([np.zeros(overlap // 2, dtype=np.float32), np.asarray(y, dtype=np.float32)])
    hop = WINDOW - overlap
    windows = []
    for start in range(0, len(audio), hop):
        window = audio[start : start + WINDOW]
        windows.append(np.pad(window, (0, WINDOW - len(window))))
    note, onset = _session().run(["StatefulPartitionedCall:1", "StatefulPartitionedCall:2"],
                                 {"serving_default_input_2:0": np.stack(windows)[:, :, None]})
    cut = OVERLAP_FRAMES // 2
    frames = int(np.floor(len(y) * (SAMPLE_RATE // HOP) / SAMPLE_RATE))
    unwrap = lambda a: a[:, cut:-cut].reshape(-1, a.shape[-1])[:frames]  # noqa: E731
    return unwrap(note), unwrap(onset)


def transcribe(y: np.ndarray) -> list[tuple[float, float, int]]:
    """``(onset_s, offset_s, midi_pitch)`` notes of mono audio at 22,050 Hz."""
    from mirkit.kinds.decode import notes_from_activations

    note, onset = posteriors(y)
    times = np.arange(len(note)) * HOP / SAMPLE_RATE
    return notes_from_activations(note, onset, times, rate_hz=SAMPLE_RATE / HOP, min_duration_s=MIN_NOTE_S)


__all__ = ["model_path", "posteriors", "transcribe"]
