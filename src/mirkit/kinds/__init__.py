"""Task kinds: one frozen spec per kind of task, carrying the behaviour every pipeline reads
(:mod:`mirkit.kinds.base`), and the peers that estimate each kind (:mod:`mirkit.kinds.peers`).

Importing this package registers every kind and peer. A new kind is one module here (a subclass of
:class:`ClipKind` or :class:`FrameKind`, registered with :func:`register_kind`, its peers with
:func:`register_peer`) imported below; see ``mirkit/kinds/onsets.py`` for a frame-level one.
"""

# registration order is listing order (kinds, then peers); tempo first keeps the peers' historic order
from mirkit.kinds import (  # noqa: F401  (clip level)  # noqa: F401  (frame level, stems)
    beat,
    chords,
    classification,
    key,
    multilabel,
    notes,
    onsets,
    optional_peers,  # noqa: F401  (essentia, madmom: when installed)
    regression,
    separation,
    tempo,
)
from mirkit.kinds.base import (
    KINDS,
    ClipKind,
    FrameKind,
    StemsKind,
    TaskKind,
    clip_kind,
    frame_kind,
    get_kind,
    kinds_of_level,
    register_kind,
)
from mirkit.kinds.peers import PEERS, PeerSpec, current_name, get_peer, peers_of_kind, register_peer

__all__ = ["KINDS", "PEERS", "ClipKind", "FrameKind", "PeerSpec", "StemsKind", "TaskKind", "clip_kind", "frame_kind",
           "current_name", "get_kind", "get_peer", "kinds_of_level", "peers_of_kind", "register_kind", "register_peer"]
