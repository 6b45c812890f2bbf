"""Copy tasks of a built suite with their audio re-encoded as Ogg Vorbis (lossy, ~5x smaller).

Used to carry the quick suite to a machine that cannot build it (no Debian archive, a size limit
on what travels); labels, splits and pieces are unchanged, manifests point at the new files and
record the transcoding. Results on a transcoded copy are labelled as such.

    python scripts/transcode_suite.py runs/suite-quick OUT --tasks key,tempo,tagging,instrument
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import soundfile as sf

from mirkit.data.manifest import file_sha256


def transcode_task(src: Path, dst: Path, *, quality: float, done: dict[Path, Path]) -> int:
    """Write ``dst/manifest.jsonl`` and the re-encoded audio it names; returns the clip count."""
    dst.mkdir(parents=True, exist_ok=True)
    lines = []
    for line in (src / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        source = (src / entry["path"]).resolve()
        rel = Path(entry["path"]).with_suffix(".ogg")
        target = (dst / rel).resolve()
        if source not in done:
            target.parent.mkdir(parents=True, exist_ok=True)
            audio, rate = sf.read(source, dtype="float32")
            # libsndfile's compression level for Vorbis is 1 - quality
            sf.write(target, audio, rate, format="OGG", subtype="VORBIS", compression_level=1.0 - quality)
            done[source] = target
        entry["path"] = str(rel)
        entry["sha256"] = file_sha256(target)
        entry.setdefault("rendering", {})["transcoded"] = {"from": source.name, "format": "ogg-vorbis",
                                                           "quality": quality}
        lines.append(json.dumps(entry, sort_keys=True))
    if (src / "task.json").is_file():  # the copy is the same task: it says its kind as the original does
        (dst / "task.json").write_bytes((src / "task.json").read_bytes())
    (dst / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--tasks", default="key,tempo,tagging,instrument")
    parser.add_argument("--quality", type=float, default=0.4, help="Vorbis quality in [0, 1] (default 0.4)")
    args = parser.parse_args()
    if not 0.0 <= args.quality <= 1.0:
        parser.error(f"--quality {args.quality} must be in [0, 1]")
    done: dict[Path, Path] = {}
    tasks = [t for t in args.tasks.split(",") if t]
    for task in tasks:
        if not (args.suite / task / "manifest.jsonl").is_file():
            parser.error(f"{args.suite / task} has no manifest.jsonl; build the suite first (mirkit data build)")
        count = transcode_task(args.suite / task, args.out / task, quality=args.quality, done=done)
        print(f"{task}: {count} clips")
    if (args.suite / "suite.json").is_file():  # the copy describes itself: its tasks, checksums, encoding
        info = json.loads((args.suite / "suite.json").read_text(encoding="utf-8"))
        info["counts"] = {t: c for t, c in info.get("counts", {}).items() if t in tasks}
        info["manifest_sha256"] = {t: file_sha256(args.out / t / "manifest.jsonl") for t in tasks}
        info["transcoded"] = {"from": str(args.suite.resolve()), "format": "ogg-vorbis", "quality": args.quality}
        (args.out / "suite.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{len(done)} audio files re-encoded, {size / 2 ** 20:.1f} MiB in {args.out}")


if __name__ == "__main__":
    main()
