"""How a task's label follows a label-changing augmentation (:mod:`mirkit.audio.augment`).

Rules are keyed by the label a task trains on (``key``, ``pitch``, ``bpm``, ``family``, ``genre``,
``tags``: the suite's tasks, whatever their folder is called). For each, each facet an augmentation may change (``semitones``: a pitch shift; ``rate``:
a speed change) has a rule: a function of the label and the amount, or :data:`KEEP` (the label does
not depend on it: an instrument family under a shift of two semitones, a key under a speed change).
A facet without a rule for a task is refused before the run starts: genre and tagging under a speed
change (the tempo-class tag and the styles' tempo ranges would move) and tasks from dataset adapters.

The time-resolved tasks' labels are times (``beats``, ``chords``, ``notes``, ``onsets``): under a speed change
(:data:`TIME`) the labels stay and the crop's frame grid is scaled instead (frame ``t`` of a crop
played ``rate`` times faster shows the music at ``offset + t * rate`` of the original clip); under a
pitch shift chord roots and note pitches are transposed, beats kept.
"""

from __future__ import annotations

from collections.abc import Callable

from mirkit.errors import ConfigError
from mirkit.kinds.labels import PITCH_NAMES

KEEP = "keep"
TIME = "time"  # the labels are times: the crop's frame grid is scaled by the speed change instead


def transpose_key(label: object, semitones: float) -> str:
    """``"A# major"`` shifted by ``semitones`` (mode kept; sharps, as the suite's key names)."""
    tonic, mode = str(label).split(" ", 1)
    return f"{PITCH_NAMES[(PITCH_NAMES.index(tonic) + int(round(semitones))) % 12]} {mode}"


def shift_pitch(label: object, semitones: float) -> str:
    """A MIDI pitch label (``"61"``) shifted by ``semitones``."""
    return str(int(label) + int(round(semitones)))  # type: ignore[call-overload]


def scale_tempo(label: object, rate: float) -> float:
    """BPM of the music played ``rate`` times faster."""
    return float(label) * rate  # type: ignore[arg-type]


def transpose_chords(label: object, semitones: float) -> list:
    """Chord segments ``[[start, end, "A:min7"], ...]`` with every root moved by ``semitones`` (Harte labels:
    quality, extensions and the bass interval kept; ``N`` and ``X`` unchanged)."""
    import mir_eval

    out = []
    for start, end, chord in label:  # type: ignore[attr-defined]
        chord = str(chord)
        if chord not in ("N", "X"):
            root, _, rest = chord.partition(":")
            pitch = mir_eval.chord.pitch_class_to_semitone(root)
            chord = PITCH_NAMES[(pitch + int(round(semitones))) % 12] + (f":{rest}" if rest else "")
        out.append([start, end, chord])
    return out


def shift_notes(label: object, semitones: float) -> list:
    """A note list (``[{"onset_s", "offset_s", "pitch"}, ...]``) with every pitch moved by ``semitones``."""
    return [{**note, "pitch": int(note["pitch"]) + int(round(semitones))} for note in label]  # type: ignore[attr-defined]


Rule = Callable[[object, float], object]
#: label name -> facet -> rule (the suite's key, pitch, tempo, instrument, genre and tagging tasks)
RULES: dict[str, dict[str, Rule | str]] = {
    "key": {"semitones": transpose_key, "rate": KEEP},
    "pitch": {"semitones": shift_pitch, "rate": KEEP},
    "bpm": {"semitones": KEEP, "rate": scale_tempo},
    "family": {"semitones": KEEP, "rate": KEEP},
    "genre": {"semitones": KEEP},
    "tags": {"semitones": KEEP},
    "beats": {"semitones": KEEP, "rate": TIME},
    "chords": {"semitones": transpose_chords, "rate": TIME},
    "notes": {"semitones": shift_notes, "rate": TIME},
    "onsets": {"semitones": KEEP, "rate": TIME},
}


def check_rules(task: str, label: str | None, names: tuple[str, ...]) -> None:
    """Refuse, before any work, an augmentation that would change the labels (``label``) of ``task``
    without a rule."""
    from mirkit.audio.augment import AUGMENTATIONS

    rules = RULES.get(label or "", {})
    for name in names:
        facet = AUGMENTATIONS.get(name).facet
        if facet is not None and facet not in rules:
            ruled = [n for n in AUGMENTATIONS if AUGMENTATIONS.get(n).facet in (None, *rules)]
            raise ConfigError(f"--augment {name} changes the music's {facet} and mirkit has no rule for how the "
                              f"{label or 'time-resolved'} labels of task {task!r} follow it, so they would change "
                              f"silently; use --augment {','.join(ruled)} (or a subset) for this task.")


def relabel(label_name: str, label: object, changes: dict[str, float]) -> object:
    """``label`` (of the kind ``label_name``) after the augmentations' ``changes`` (each facet through its
    rule; :func:`check_rules` ran)."""
    for facet, amount in changes.items():
        rule = RULES[label_name][facet]
        if rule != KEEP:
            label = rule(label, amount)  # type: ignore[operator]
    return label


def relabel_timed(label_name: str, labels: dict[str, object], changes: dict[str, float]) -> tuple[dict[str, object], float]:
    """A time-resolved clip's labels after ``changes`` and the scale of its crop's frame grid (the product
    of the speed changes; 1.0 without one)."""
    out, scale = dict(labels), 1.0
    for facet, amount in changes.items():
        rule = RULES[label_name][facet]
        if rule == TIME:
            scale *= amount
        elif rule != KEEP:
            out[label_name] = rule(out[label_name], amount)  # type: ignore[operator]
    return out, scale


def scale_times(labels: dict[str, object], rate: float, *, duration_s: float | None = None) -> dict[str, object]:
    """A whole clip's time labels after playing it ``rate`` times faster: beat, downbeat, chord and note
    times divided by ``rate``, the tempo multiplied by it, other labels kept; with ``duration_s`` (the
    copy is cut there) what starts later is dropped and what ends later is cut."""
    end = float("inf") if duration_s is None else duration_s
    out = dict(labels)
    for name in ("beats", "downbeats", "onsets"):
        if isinstance(out.get(name), list):
            out[name] = [round(float(t) / rate, 6) for t in out[name] if float(t) / rate < end]  # type: ignore[union-attr]
    if isinstance(out.get("chords"), list):
        out["chords"] = [[round(float(a) / rate, 6), round(min(float(b) / rate, end), 6), c]
                         for a, b, c in out["chords"] if float(a) / rate < end]  # type: ignore[union-attr]
    if isinstance(out.get("notes"), list):
        out["notes"] = [{**n, "onset_s": round(float(n["onset_s"]) / rate, 6),
                         "offset_s": round(min(float(n["offset_s"]) / rate, end), 6)}
                        for n in out["notes"] if float(n["onset_s"]) / rate < end]  # type: ignore[union-attr]
    if isinstance(out.get("bpm"), (int, float)):
        out["bpm"] = round(float(out["bpm"]) * rate, 3)  # type: ignore[arg-type]
    return out


def relabel_copy(label_name: str, labels: dict[str, object], changes: dict[str, float], *,
                 duration_s: float | None = None) -> dict[str, object]:
    """A whole augmented clip's labels (an offline copy, ``mirkit boost --augment``): each facet through its
    rule; a speed change on a time-resolved task moves every time label (:func:`scale_times`, cut at the
    copy's ``duration_s``) instead of a crop's frame grid. A note list must be loaded into
    ``labels["notes"]`` first."""
    out = dict(labels)
    for facet, amount in changes.items():
        rule = RULES[label_name][facet]
        if rule == TIME:
            out = scale_times(out, amount, duration_s=duration_s)
        elif rule != KEEP:
            out[label_name] = rule(out[label_name], amount)  # type: ignore[operator]
    return out


__all__ = ["KEEP", "RULES", "TIME", "check_rules", "relabel", "relabel_copy", "relabel_timed", "scale_tempo",
           "scale_times", "shift_notes", "shift_pitch", "transpose_chords", "transpose_key"]
