"""``validate_suite``: files present and decodable, checksums, labels in vocabulary, splits disjoint, beat
and chord annotations sorted, inside the clip and consistent with the tempo and meter labels."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from mirkit.data.manifest import SPLITS, file_sha256, read_manifest
from mirkit.data.task_folder import TaskFolder, load_task
from mirkit.errors import ConfigError


def _label_problem(task: TaskFolder, labels: dict[str, object], *, duration_s: float) -> str | None:
    value = labels.get(task.label)
    if value is None:
        return f"label {task.label!r} is missing"
    return task.kind.check_label(value, labels=labels, vocabulary=task.vocabulary, folder=task.path,
                                 duration_s=duration_s)


def _decode_problem(path: Path, sf) -> str | None:
    try:
        with sf.SoundFile(path) as handle:
            return None if len(handle.read(1024)) else "decodes to no samples"
    except Exception as exc:
        return f"cannot decode ({exc})"


def validate_suite(root: str | Path, *, check_audio: bool = True) -> list[str]:
    """Every problem found, as messages naming the task, file and what is wrong (empty = valid)."""
    import soundfile as sf

    root = Path(root)
    info_path = root / "suite.json"
    if not info_path.is_file():
        raise ConfigError(f"{root} has no suite.json; build one with `mirkit data build --suite quick --out {root}`.")
    info = json.loads(info_path.read_text())
    problems: list[str] = []
    checked: dict[Path, tuple[str, str | None]] = {}  # audio shared by tasks (pitch/instrument, tagging/genre) is read once
    for task in info["counts"]:
        manifest = root / task / "manifest.jsonl"
        if not manifest.is_file():
            problems.append(f"{task}: {manifest} is missing (suite.json lists this task); rebuild the suite")
            continue
        if file_sha256(manifest) != info["manifest_sha256"].get(task):
            problems.append(f"{task}: manifest.jsonl changed since the build (checksum differs)")
        entries = read_manifest(manifest)
        folder = load_task(root / task)
        split_of_piece: dict[str, set[str]] = defaultdict(set)
        soundfonts_of_split: dict[str, set[str]] = defaultdict(set)
        for entry in entries:
            split_of_piece[entry.piece].add(entry.split)
            soundfonts_of_split[entry.split].add(str(entry.rendering.get("soundfont")))
            label_problem = _label_problem(folder, entry.labels, duration_s=entry.duration_s)
            if label_problem:
                problems.append(f"{task}: {entry.path}: {label_problem}")
            path = root / task / entry.path
            if not path.is_file():
                problems.append(f"{task}: {entry.path}: file is missing")
                continue
            if check_audio:
                resolved = path.resolve()
                if resolved not in checked:
                    checked[resolved] = (file_sha256(path), _decode_problem(path, sf))
                digest, decode_problem = checked[resolved]
                if digest != entry.sha256:
                    problems.append(f"{task}: {entry.path}: checksum differs from the manifest")
                if decode_problem:
                    problems.append(f"{task}: {entry.path}: {decode_problem}")
        for piece, splits in split_of_piece.items():
            if len(splits) > 1:
                problems.append(f"{task}: piece {piece} appears in several splits {sorted(splits)}")
        for split in SPLITS:
            if split not in soundfonts_of_split:
                problems.append(f"{task}: the {split} split is empty")
        if info["soundfonts"]["test_unseen_in_train"] and soundfonts_of_split["test"] & soundfonts_of_split["train"]:
            problems.append(f"{task}: a test soundfont is also used in train")
    return problems


def machine_differences(root: str | Path) -> list[str]:
    """The external inputs (soundfonts, MMA, FluidSynth, packages) a suite recorded that differ on this machine."""
    from mirkit.data import mma as mma_lib
    from mirkit.data.inputs import external_inputs, input_differences

    info = json.loads((Path(root) / "suite.json").read_text())
    recorded = info.get("inputs")
    if not recorded:
        return ["the suite records no inputs (built by an older mirkit)"]
    current = external_inputs(soundfonts=sorted(recorded.get("soundfonts") or {}),
                              mma_home=mma_lib.locate() if recorded.get("mma") else None,
                              fluidsynth="fluidsynth" in recorded)
    return input_differences(recorded, current)
