"""Peers run on a split of a task folder: every clip's audio through the peer's estimator, the
estimates scored by the task's kind as the probes are scored, clips that fail skipped with their
reason. The peers themselves (what they estimate and how) are registered with their kinds in
:mod:`mirkit.kinds.peers`."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from mirkit.audio import load
from mirkit.data.task_folder import TaskFolder, clip_path, load_task, usable_entry
from mirkit.errors import AudioError, MirkitError
from mirkit.kinds import PEERS, PeerSpec, peers_of_kind


def default_peers() -> list[str]:
    """Every registered peer (those not installed are reported as not run)."""
    return list(PEERS)


def run_peer(spec: PeerSpec, task: TaskFolder | str | Path, *, split: str = "test",
             progress: bool = True) -> dict[str, object]:
    """Run one peer on one split of a task folder; returns its metrics and what it skipped.

    Raises:
        MirkitError: the peer is not installed (the message says how to install it and its licence), or it
            estimates another kind than the task's.
    """
    from tqdm.auto import tqdm

    version = spec.version()
    if version is None:
        raise MirkitError(f"peer {spec.name!r} needs the {spec.package!r} package, which is not installed "
                          f"(licence {spec.licence}; optional, never a mirkit dependency): pip install {spec.package}")
    task = task if isinstance(task, TaskFolder) else load_task(task)
    kind = task.kind
    if kind.name != spec.kind:
        raise MirkitError(f"peer {spec.name!r} estimates {spec.kind}, and {task.path.name!r} is a {kind.name} task; "
                          f"its peers are {[p.name for p in peers_of_kind(kind.name)] or 'none'}.")
    entries = [e for e in task.entries() if e.split == split]
    started = time.perf_counter()
    estimate = spec.estimator()
    references, estimates, skipped = [], [], Counter()
    failures: list[dict[str, str]] = []
    for entry in tqdm(entries, desc=f"peer {spec.name}", unit="file", disable=not progress or None, leave=False):
        path = clip_path(entry, task.manifest)
        bad: list[dict[str, str]] = []
        usable = usable_entry(kind, entry, task.path, bad)
        if usable is None:
            skipped["bad_labels"] += 1
            failures.append({"path": path, "reason": "bad_labels", "message": bad[0]["message"]})
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
        references.append(usable.labels if kind.frame_level else usable.labels[task.label])
        estimates.append(value)
    if not estimates:
        raise MirkitError(f"peer {spec.name!r} produced no estimate on the {split} split of {task.path} "
                          f"({dict(skipped)}); first failure: {failures[0] if failures else 'no clips'}.")
    test = kind.score(references, estimates)  # type: ignore[attr-defined]
    return {"peer": spec.name, "task": task.path.name, "split": split, "package": spec.package, "version": version,
            "licence": spec.licence, "description": spec.description, "test": test, "clips": len(estimates),
            "skipped": dict(skipped), "failures": failures[:20], "wall_s": round(time.perf_counter() - started, 3)}


def score_peer_on_manifest(spec: PeerSpec, manifest: str | Path, *, kind_name: str | None = None, label: str,
                           check_labels: bool = True, progress: bool = False) -> dict[str, object]:
    """Run one peer on the test clips of a manifest (a clean or perturbed test split, or real recordings) and score
    it by ``kind_name`` (default: the peer's kind) against the ``label`` field (frame kinds: the whole labels,
    sidecars read and, with ``check_labels``, checked as for training; real recordings whose charts give beats but
    no bar are scored unchecked). Returns the scores, the clips scored and skipped, and the seconds per minute of
    audio."""
    from tqdm.auto import tqdm

    from mirkit.data.manifest import read_manifest
    from mirkit.kinds import get_kind

    if spec.version() is None:
        raise MirkitError(f"peer {spec.name!r} needs the {spec.package!r} package, which is not installed "
                          f"(licence {spec.licence}): pip install {spec.package}")
    manifest = Path(manifest)
    kind = get_kind(kind_name or spec.kind)
    estimate = spec.estimator()
    references, estimates, skipped = [], [], Counter()
    seconds = audio_s = 0.0
    entries = [e for e in read_manifest(manifest) if e.split == "test"]
    for entry in tqdm(entries, desc=f"peer {spec.name}", unit="file", disable=not progress or None, leave=False):
        path = entry.path if Path(entry.path).is_absolute() else str(manifest.parent / entry.path)
        usable = usable_entry(kind, entry, manifest.parent, []) if kind.frame_level and check_labels else entry
        if usable is None or (not kind.frame_level and label not in usable.labels):
            skipped["bad_labels"] += 1
            continue
        try:
            y, _ = load(path, sample_rate=spec.sample_rate)
            started = time.perf_counter()
            value = estimate(y)
            seconds += time.perf_counter() - started
            audio_s += len(y) / spec.sample_rate
        except AudioError as exc:
            skipped[exc.reason] += 1
            continue
        except Exception:  # noqa: BLE001 - a peer failing on one file must not end the run
            skipped["peer_error"] += 1
            continue
        references.append(usable.labels if kind.frame_level else usable.labels[label])
        estimates.append(value)
    if not estimates:
        raise MirkitError(f"peer {spec.name!r} produced no estimate on {manifest} ({dict(skipped)}).")
    return {"peer": spec.name, "version": spec.version(), "licence": spec.licence, "manifest": str(manifest),
            "test": kind.score(references, estimates), "clips": len(estimates),  # type: ignore[attr-defined]
            "skipped": dict(skipped), "s_per_audio_min": round(60 * seconds / audio_s, 3) if audio_s else None}


__all__ = ["default_peers", "run_peer", "score_peer_on_manifest"]
