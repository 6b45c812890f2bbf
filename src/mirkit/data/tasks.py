"""Task specs: what each benchmark task predicts, from which label field, with which vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

from mirkit.registry import Registry

PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
KEYS = tuple(f"{tonic} {mode}" for mode in ("major", "minor") for tonic in PITCH_NAMES)
#: NSynth's 11 instrument families (Engel et al. 2017).
FAMILIES = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal")
STYLES = ("rock", "swing", "bossa", "waltz", "march", "ballad", "funk", "reggae")
TAGS = STYLES + FAMILIES + ("drums", "major", "minor", "slow", "medium", "fast", "sparse", "dense")


TIME_RESOLVED_KINDS = ("transcription", "beat", "chords")


@dataclass(frozen=True)
class TaskSpec:
    """One task.

    Attributes:
        name: task folder name and registry key.
        kind: ``multiclass``, ``multilabel``, ``regression``, ``key`` (24 classes), ``tempo``, a
            time-resolved kind: ``transcription``, ``beat`` (beats + downbeats), ``chords``, or
            ``separation`` (stems; ``mirkit boost --model open-unmix``, not probes).
        label: the manifest ``labels`` field holding the target.
        vocabulary: class names (empty for regression/tempo).
        metric: the headline metric.
    """

    name: str
    kind: str
    label: str
    vocabulary: tuple[str, ...]
    metric: str
    description: str

    @property
    def time_resolved(self) -> bool:
        """Whether labels live in time (frame-level heads, decoding) rather than one per clip."""
        return self.kind in TIME_RESOLVED_KINDS

    @property
    def clip_level(self) -> bool:
        """Whether a clip-level probe predicts it (one label per clip)."""
        return not self.time_resolved and self.kind != "separation"


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
    TaskSpec("separation", "separation", "stems", ("drums", "bass", "other"), "sdr",
             "drums, bass and other stems of generated grooves, each rendered on its own; the mix is their sum"),
):
    TASKS.register(_spec.name, _spec)

#: Tasks that ``mirkit data build`` renders; the others come from dataset adapters (``mirkit data adapt``).
SUITE_TASKS = ("key", "tempo", "instrument", "pitch", "genre", "tagging", "transcription", "beat", "chords",
               "separation")
