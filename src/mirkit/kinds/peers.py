"""Peers: established MIR tools that estimate what a task kind asks for, run on the same test split as
the probes and shown as rows of the same tables.

A peer is a :class:`PeerSpec` registered in :data:`PEERS` beside the kind it scores: its ``make``
returns a function from a mono waveform at ``sample_rate`` to an estimate in the kind's own terms
(a BPM or key name for a clip kind, the dict of events that the kind's ``decode`` returns for a
frame kind), and the kind scores it (:meth:`~mirkit.kinds.base.ClipKind.score`,
:meth:`~mirkit.kinds.base.FrameKind.score`). Registered peers (in this order):

- ``librosa-tempo`` (tempo): the global tempo of librosa's beat tracker (ISC).
- ``librosa-ks`` (key): mean CQT chroma correlated with the Krumhansl-Kessler (1982) profiles (ISC).
- ``librosa-beat-track`` (beat): the beat times of librosa's dynamic-programming beat tracker (Ellis
  2007; no downbeats).
- ``chroma-templates`` (chords): CQT chroma (librosa) correlated with binary major/minor triad
  templates, low-energy frames as ``N``, smoothed by the same Viterbi decoder as the probes' chords.
- ``basic-pitch`` (transcription): Spotify's basic-pitch ONNX model through onnxruntime (Apache-2.0;
  :mod:`mirkit.kinds.basic_pitch`).
- ``librosa-onsets`` (onsets): librosa's spectral-flux onset detector with its peak picking (ISC).
- essentia and madmom (AGPL-3.0; CC BY-NC-SA 4.0 models), used only when the user installed them:
  :mod:`mirkit.kinds.optional_peers`.

No peer is a dependency of mirkit; a peer that is not installed is reported as such, never faked.
Peers renamed since (:data:`RENAMED`) are read under their new names from old result files, and
their old names are accepted wherever a peer is named.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mirkit.registry import Registry

Estimator = Callable[[np.ndarray], object]


@dataclass(frozen=True)
class PeerSpec:
    """One established tool estimating one task kind.

    Attributes:
        name: registry key.
        kind: the task kind it estimates (:data:`mirkit.kinds.KINDS`); it runs on any task of that kind.
        package: the distribution that must be installed (its version goes into the report).
        licence: of the tool (and its models).
        sample_rate: the rate the tool is fed, in Hz.
        description: one line for the report.
        make: ``make(spec)`` -> the estimator (imports the tool; called once per run).
    """

    name: str
    kind: str
    package: str
    licence: str
    sample_rate: int
    description: str
    make: Callable[["PeerSpec"], Estimator]

    def estimator(self) -> Estimator:
        """The function from a mono waveform at :attr:`sample_rate` to an estimate in the kind's terms."""
        return self.make(self)

    def version(self) -> str | None:
        """The installed version of the peer's package, or ``None`` when it is not installed."""
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return None


PEERS: Registry[PeerSpec] = Registry("peer", listing_hint="mirkit bench --help")
#: old name -> current name of renamed peers (``librosa-beat`` estimated a tempo, ``librosa-beats`` beat times)
RENAMED = {"librosa-beat": "librosa-tempo", "librosa-beats": "librosa-beat-track"}


def current_name(name: str) -> str:
    """A peer's current name (an old name of a renamed peer maps to its new one; others are as given)."""
    return RENAMED.get(name, name)


def get_peer(name: str) -> PeerSpec:
    """The registered peer ``name`` (old names of renamed peers accepted)."""
    return PEERS.get(current_name(name))


def register_peer(spec: PeerSpec) -> PeerSpec:
    return PEERS.register(spec.name, spec)


def peers_of_kind(kind: str) -> list[PeerSpec]:
    """The registered peers estimating ``kind``, in registration order."""
    return [spec for _, spec in PEERS.items() if spec.kind == kind]


__all__ = ["Estimator", "PEERS", "PeerSpec", "RENAMED", "current_name", "get_peer", "peers_of_kind", "register_peer"]
