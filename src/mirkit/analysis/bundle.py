"""Analysis heads: which suite task each analysis output comes from, and the bundle that holds the heads.

A **bundle** is a folder written by :func:`mirkit.analysis.train.train_bundle`::

    BUNDLE/bundle.json          what was trained on what, the head chosen per task and its scores
    BUNDLE/<task>/results/*.json   the chosen job's result per seed (as `mirkit probe` writes them)
    BUNDLE/<task>/models/<job>/    the chosen job's heads (one per seed; their outputs are averaged)
    BUNDLE/MODEL_CARD.md        training data, encoder per task, scores with seed ranges, licences

Each task folder is a probe run cut down to its chosen job, so the heads load with the code that
`mirkit predict` uses. The package ships one bundle (``mirkit/analysis/heads``); ``--heads DIR``
selects another (e.g. one retrained on a user's suite).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mirkit.errors import CheckpointError, ConfigError
from mirkit.registry import Registry

#: the heads shipped inside the package
SHIPPED = Path(__file__).resolve().parent / "heads"
BUNDLE_FILE = "bundle.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class AnalysisTask:
    """One output of ``mirkit analyze``.

    Attributes:
        name: the output's name (``--tasks``, the JSON field).
        suite_task: the benchmark task its head is trained on (:data:`mirkit.data.tasks.TASKS`).
        candidates: encoders tried by ``mirkit analyze train`` (chosen on the validation split).
        augment: augmentations of the training clips (clip-level tasks; :mod:`mirkit.audio.augment`).
        description: one line for listings.
    """

    name: str
    suite_task: str
    candidates: tuple[str, ...]
    augment: str = "none"
    description: str = ""


ANALYSIS_TASKS: Registry[AnalysisTask] = Registry("analysis task", listing_hint="mirkit analyze --help")
for _task in (
    AnalysisTask("key", "key", ("logmel", "chroma", "musicnn-mtt"), augment="eq,room",
                 description="global key (tonic and major/minor) with its probability"),
    AnalysisTask("beats", "beat", ("musicnn-mtt", "logmel"),
                 description="beat and downbeat times, and the tempo in BPM read off the beats"),
    AnalysisTask("chords", "chords", ("logmel", "chroma"), description="major/minor chord segments (Harte labels)"),
    AnalysisTask("notes", "transcription", ("basic-pitch", "logmel"), description="notes (onset, offset, MIDI pitch)"),
    AnalysisTask("instrument", "instrument", ("musicnn-mtt", "logmel"), augment="eq,room",
                 description="instrument family probabilities (11 NSynth families)"),
    AnalysisTask("tags", "tagging", ("musicnn-mtt", "logmel"),
                 description="tag probabilities (style, instruments, mode, tempo class, density)"),
):
    ANALYSIS_TASKS.register(_task.name, _task)


def parse_tasks(text: str | None) -> list[str]:
    """``"key,beats"`` (or ``None``/``"all"``: every analysis task) -> checked task names, in registry order."""
    if text is None or text.strip() in ("", "all"):
        return list(ANALYSIS_TASKS)
    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        ANALYSIS_TASKS.get(name)  # an unknown name fails with a suggestion
    return [t for t in ANALYSIS_TASKS if t in names]


@dataclass(frozen=True)
class HeadEntry:
    """One task's chosen head as ``bundle.json`` records it."""

    task: str
    suite_task: str
    encoder: str
    job: str
    level: str  # clip | frame
    kind: str
    seeds: int
    loudness: str
    frame_rate_hz: float | None
    scores: dict


@dataclass(frozen=True)
class Bundle:
    """A bundle folder and its ``bundle.json``."""

    path: Path
    info: dict

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Bundle":
        """The bundle at ``path`` (default: the shipped one); a folder that is no bundle says how to make one."""
        folder = Path(path) if path is not None else SHIPPED
        try:
            info = json.loads((folder / BUNDLE_FILE).read_text())
        except FileNotFoundError:
            hint = ("the package was installed without its heads; reinstall mirkit" if path is None else
                    "train one with `mirkit analyze train --suite SUITE --out DIR`")
            raise CheckpointError(f"{folder} holds no {BUNDLE_FILE}: it is not an analysis bundle ({hint}).") from None
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{folder / BUNDLE_FILE} is unreadable ({exc}); retrain the bundle with "
                                  "`mirkit analyze train`.") from None
        if info.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{folder / BUNDLE_FILE} has format_version {info.get('format_version')!r}; this "
                                  f"mirkit reads {FORMAT_VERSION}. Retrain it with `mirkit analyze train`.")
        return cls(folder, info)

    @property
    def tasks(self) -> list[str]:
        return [t for t in ANALYSIS_TASKS if t in self.info["tasks"]]

    def entry(self, task: str) -> HeadEntry:
        if task not in self.info["tasks"]:
            raise ConfigError(f"analysis task {task!r} has no head in {self.path} (it holds: "
                              f"{', '.join(self.tasks) or 'none'}); retrain it with `mirkit analyze train --tasks "
                              f"{task}` or leave it out of --tasks.")
        record = self.info["tasks"][task]
        return HeadEntry(task=task, **{k: record[k] for k in ("suite_task", "encoder", "job", "level", "kind", "seeds",
                                                              "loudness", "frame_rate_hz", "scores")})

    def head_dir(self, task: str) -> Path:
        return self.path / task


__all__ = ["ANALYSIS_TASKS", "AnalysisTask", "BUNDLE_FILE", "Bundle", "FORMAT_VERSION", "HeadEntry", "SHIPPED",
           "parse_tasks"]
