"""Task specs: what each benchmark task predicts, from which label field, with which vocabulary.

A task has a kind (:mod:`mirkit.kinds`), which carries the behaviour; the spec holds the data facts
(label field, vocabulary, description) and, for a task derived from another one's audio and labels,
where it comes from. A task folder records its spec in ``task.json`` (:mod:`mirkit.data.task_folder`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mirkit.kinds import TaskKind, get_kind
from mirkit.kinds.labels import KEYS
from mirkit.kinds.onsets import onsets_from_notes
from mirkit.registry import Registry

#: NSynth's 11 instrument families (Engel et al. 2017).
FAMILIES = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal")
STYLES = ("rock", "swing", "bossa", "waltz", "march", "ballad", "funk", "reggae")
TAGS = STYLES + FAMILIES + ("drums", "major", "minor", "slow", "medium", "fast", "sparse", "dense")


@dataclass(frozen=True)
class TaskSpec:
    """One task.

    Attributes:
        name: task folder name and registry key.
        kind: the name of its kind in :data:`mirkit.kinds.KINDS`.
        label: the manifest ``labels`` field holding the target.
        vocabulary: class names (empty for values and labels in time; stem names for separation).
        metric: the headline metric (the kind's).
        description: one line for listings.
        source: for a derived task, the task whose audio and labels it is built from.
        derive: for a derived task, ``derive(source labels, sidecars read) -> labels``.
    """

    name: str
    kind: str
    label: str
    vocabulary: tuple[str, ...]
    metric: str
    description: str
    source: str | None = None
    derive: Callable[[Mapping[str, Any]], dict[str, object]] | None = None

    @property
    def task_kind(self) -> TaskKind:
        return get_kind(self.kind)

    def to_dict(self) -> dict[str, object]:
        """What a task folder's ``task.json`` records."""
        return {"name": self.name, "kind": self.kind, "label": self.label, "vocabulary": list(self.vocabulary),
                "metric": self.metric, "description": self.description}


TASKS: Registry[TaskSpec] = Registry("task", listing_hint="mirkit data tasks")
for _spec in (
    TaskSpec("key", "key", "key", KEYS, "mirex_weighted", "24 keys (tonic x major/minor): generated progressions, Bach chorales, Essen folk songs"),
    TaskSpec("tempo", "tempo", "bpm", (), "acc1", "tempo in BPM of generated grooves, 50-220"),
    TaskSpec("instrument", "multiclass", "family", FAMILIES, "accuracy",
             "NSynth-like single notes, 11 families; test instruments are unseen (program + soundfont)"),
    TaskSpec("pitch", "multiclass", "pitch", tuple(str(p) for p in range(21, 109)), "accuracy",
             "MIDI pitch (21-108) of the same single notes"),
    TaskSpec("genre", "multiclass", "genre", STYLES, "accuracy", "style families of generated grooves"),
    TaskSpec("tagging", "multilabel", "tags", TAGS, "roc_auc", "style, instruments, mode, tempo class and density"),
    TaskSpec("emotion", "regression", "arousal_valence", (), "r2",
             "static arousal and valence (EmoMusic, from `mirkit data adapt emomusic`)"),
    TaskSpec("technique", "multiclass", "technique", (), "accuracy",
             "singing technique (VocalSet, from `mirkit data adapt vocalset`); test singers unseen"),
    TaskSpec("singer", "multiclass", "singer", (), "accuracy", "singer identity (VocalSet), split by exercise"),
    TaskSpec("transcription", "transcription", "notes", (), "note_f1",
             "rendered piano and ensemble pieces; note lists and 100 fps piano rolls beside each clip"),
    TaskSpec("beat", "beat", "beats", (), "f_measure",
             "beat and downbeat times of the tempo task's grooves (from the tempo and meter rendered)"),
    TaskSpec("chords", "chords", "chords", (), "majmin",
             "time-stamped chords (Harte labels) of the key task's progressions and Bach chorales"),
    TaskSpec("onsets", "onsets", "onsets", (), "f_measure",
             "note onset times of the transcription task's pieces (from the rendered MIDI)",
             source="transcription", derive=onsets_from_notes),
    TaskSpec("separation", "separation", "stems", ("drums", "bass", "other"), "sdr",
             "drums, bass and other stems of generated grooves, each rendered on its own; the mix is their sum"),
):
    TASKS.register(_spec.name, _spec)
    if _spec.metric != _spec.task_kind.headline:
        raise ValueError(f"task {_spec.name!r}: metric {_spec.metric!r} is not its kind's headline")

#: Tasks that ``mirkit data build`` renders or derives; the others come from dataset adapters (``mirkit data adapt``).
SUITE_TASKS = ("key", "tempo", "instrument", "pitch", "genre", "tagging", "transcription", "beat", "chords", "onsets",
               "separation")
