"""Key on music from outside the key task's sources (issue #34): Irish and Scottish dance tunes and airs.

The tunes come from the music21 collections that mirkit reserves for evaluation (O'Neill's 1850, Ryan's
Mammoth Collection, Aird's Airs); they never enter a suite, a training split or a pretraining corpus.
Label, as for the Essen songs: the key signature names a major key and its relative minor and the final
note decides; a tune ending on neither tonic (modal) is left out. The last ``--duration-s`` seconds of
each tune are rendered with the suite's test soundfont (FluidR3 when present: never a training sound),
in two textures:

- ``solo``: the melody alone;
- ``backed``: the melody with a sparse accompaniment, a bass note on each bar and a chord on its second
  half, the chord being the key's diatonic triad that best covers the bar's melody (as a player would
  vamp; minor keys use the natural-minor triads and a major dominant).

Scored: the shipped analyzer's key head (or ``--heads``) and librosa's key profiles (the ``librosa-ks``
peer): accuracy, MIREX weighted score, and accuracy on major and on minor tunes. Prints a table and a
JSON line last; writes ``OUT/key_transfer.json``.

    python benchmarks/key_transfer.py --out runs/key-transfer [--tunes 300] [--heads DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

import numpy as np

COLLECTIONS = ("oneills1850", "ryansMammoth", "airdsAirs")
PROGRAMS = (40, 73, 78, 21, 0, 22)  # fiddle, flute, whistle, accordion, piano, harmonica
MAJOR, NATURAL_MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)


def tune_blocks(per_collection: int, *, seed: int = 0) -> list[tuple[str, str, str]]:
    """``(collection, name, abc)`` of up to ``per_collection`` tunes per collection, in a fixed random order."""
    from music21 import corpus

    out = []
    for collection in COLLECTIONS:
        blocks = []
        for path in corpus.getComposer(collection):
            text = Path(path).read_text(encoding="latin-1")
            header = text.split("\nX:", 1)[0] if not text.lstrip().startswith("X:") else ""
            for block in re.split(r"\n(?=X:)", text):
                match = re.match(r"X:\s*(\d+)", block.strip())
                if match:
                    blocks.append((collection, f"{Path(path).stem}:{match.group(1)}", header + "\n" + block))
        random.Random(seed).shuffle(blocks)
        out += blocks[: per_collection * 2]  # some are modal or unreadable; keep enough to parse
    return out


def load_tunes(per_collection: int, cache: Path) -> list[dict]:
    """Labelled tunes (cached as JSON: parsing takes about 50 ms a tune)."""
    from mirkit.data.folksongs import parse_song

    if cache.is_file():
        data = json.loads(cache.read_text())
        if data["per_collection"] == per_collection:
            return data["tunes"]
    tunes: list[dict] = []
    counts = dict.fromkeys(COLLECTIONS, 0)
    for collection, name, abc in tune_blocks(per_collection):
        if counts[collection] >= per_collection:
            continue
        song = parse_song(name, abc)
        if song is None:
            continue
        counts[collection] += 1
        tunes.append({"collection": collection, "name": name, "tonic": song.tonic, "mode": song.mode,
                      "length_ql": song.length_ql, "notes": [list(n) for n in song.notes]})
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"per_collection": per_collection, "tunes": tunes}))
    return tunes


def triads(tonic: int, mode: str) -> list[tuple[int, set[int]]]:
    """``(root, pitch classes)`` of the key's diatonic triads (minor: natural minor with a major dominant)."""
    steps = MAJOR if mode == "major" else NATURAL_MINOR
    chords = [((tonic + steps[d]) % 12, {(tonic + steps[(d + k) % 7]) % 12 for k in (0, 2, 4)}) for d in range(7)]
    if mode == "minor":
        chords[4] = ((tonic + 7) % 12, {(tonic + 7) % 12, (tonic + 11) % 12, (tonic + 2) % 12})
    return chords


def render_tune(tune: dict, *, texture: str, bpm: float, duration_s: float, program: int):
    """The last ``duration_s`` seconds of the tune as a Score (melody, and for ``backed`` bass and chords)."""
    from mirkit.data.render import Score

    beat_s = 60.0 / bpm
    total_s = tune["length_ql"] * beat_s
    start_s = max(0.0, total_s - duration_s)
    score = Score(duration_s=min(duration_s, total_s) + 0.5, programs={0: program, 1: 0, 2: 32})
    for pitch, onset, length in tune["notes"]:
        on, off = onset * beat_s - start_s, (onset + length) * beat_s - start_s
        if off > 0:
            score.add(0, pitch, max(0.0, on), off - max(0.0, on), 90)
    if texture == "backed":
        chords = triads(tune["tonic"], tune["mode"])
        bar_s = 2 * beat_s  # two quarter notes: a half bar of 4/4, a bar of 2/4 or a jig's bar at 6/8
        for bar_start in np.arange(0.0, score.duration_s - 0.5, bar_s):
            weight = np.zeros(12)
            for pitch, onset, length in tune["notes"]:
                on, off = onset * beat_s - start_s, (onset + length) * beat_s - start_s
                overlap = min(off, bar_start + bar_s) - max(on, bar_start)
                if overlap > 0:
                    weight[pitch % 12] += overlap
            if weight.sum() == 0:
                continue
            root, chord = max(chords, key=lambda c: sum(weight[p] for p in c[1]))
            score.add(2, 36 + root, bar_start, bar_s * 0.9, 75)
            for pitch in sorted(48 + p for p in chord):
                score.add(1, pitch, bar_start + bar_s / 2, bar_s / 2 * 0.9, 55)
    return score


def render_all(tunes: list[dict], out: Path, *, duration_s: float, soundfont: Path) -> list[dict]:
    """Render every tune in both textures to ``out/audio`` (kept between runs); one row per clip."""
    import soundfile as sf

    from mirkit.data.render import RENDER_SAMPLE_RATE, Renderer
    from mirkit.kinds.labels import PITCH_NAMES

    renderer = Renderer(soundfont)
    rng = random.Random(0)
    rows = []
    for tune in tunes:
        bpm, program = rng.uniform(90, 140), rng.choice(PROGRAMS)
        for texture in ("solo", "backed"):
            path = out / "audio" / texture / f"{tune['name'].replace(':', '-')}.flac"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                audio = renderer.render(render_tune(tune, texture=texture, bpm=bpm, duration_s=duration_s,
                                                    program=program))
                sf.write(path, audio, RENDER_SAMPLE_RATE)
            rows.append({"path": str(path), "texture": texture, "collection": tune["collection"],
                         "key": f"{PITCH_NAMES[tune['tonic']]} {tune['mode']}", "mode": tune["mode"]})
    return rows


def scores(rows: list[dict], estimates: list[str | None]) -> dict[str, float]:
    from mirkit.kinds import get_kind

    kind = get_kind("key")
    pairs = [(r, e) for r, e in zip(rows, estimates) if e is not None]
    out = {"clips": len(pairs), "missing": len(rows) - len(pairs)}
    out["mirex_weighted"] = float(kind.score([r["key"] for r, _ in pairs], [e for _, e in pairs])["headline"])
    for mode in ("major", "minor"):
        chosen = [(r, e) for r, e in pairs if r["mode"] == mode]
        out[f"accuracy_{mode}"] = float(np.mean([r["key"] == e for r, e in chosen])) if chosen else float("nan")
    out["accuracy"] = float(np.mean([r["key"] == e for r, e in pairs]))
    return out


def main() -> None:
    from mirkit.analysis.bundle import Bundle
    from mirkit.analysis.run import analyze_paths
    from mirkit.audio import load
    from mirkit.data import soundfonts as sf_lib
    from mirkit.files import cache_dir
    from mirkit.kinds import get_peer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tunes", type=int, default=150, help="labelled tunes per collection (at most)")
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--heads", default=None, help="analysis bundle (default: the shipped heads)")
    parser.add_argument("--soundfont", default="fluidr3", help="a soundfont name (default: the suite's test one)")
    args = parser.parse_args()
    started = time.time()
    soundfont = sf_lib.locate(args.soundfont) or sf_lib.locate("timgm6mb")
    tunes = load_tunes(args.tunes, cache_dir("key-transfer-v1.json"))
    rows = render_all(tunes, args.out, duration_s=args.duration_s, soundfont=soundfont)
    bundle = Bundle.load(args.heads)
    report = analyze_paths([r["path"] for r in rows], bundle=bundle, tasks=["key"], store=args.out / "features",
                           progress=False)
    analyzer = {r["path"]: r["key"]["key"] for r in report.results}
    peer = get_peer("librosa-ks")
    estimate = peer.estimator()
    librosa_keys = [str(estimate(load(r["path"], sample_rate=peer.sample_rate)[0])) for r in rows]
    result: dict[str, object] = {"tunes": len(tunes), "soundfont": str(soundfont), "heads": str(bundle.path),
                                 "key_encoder": bundle.info["tasks"]["key"]["encoder"],
                                 "collections": {c: sum(t["collection"] == c for t in tunes) for c in COLLECTIONS}}
    print(f"{len(tunes)} tunes ({result['collections']}), {len(rows)} clips, soundfont {soundfont.name}\n")
    print("| texture | system | accuracy | major | minor | MIREX weighted |\n|---|---|---:|---:|---:|---:|")
    for texture in ("solo", "backed", "all"):
        chosen = [r for r in rows if texture in ("all", r["texture"])]
        for name, values in (("mirkit analyze", [analyzer.get(r["path"]) for r in chosen]),
                             ("librosa-ks", [librosa_keys[rows.index(r)] for r in chosen])):
            s = scores(chosen, values)
            result[f"{texture}/{name}"] = s
            print(f"| {texture} | {name} | {s['accuracy']:.3f} | {s['accuracy_major']:.3f} | {s['accuracy_minor']:.3f} "
                  f"| {s['mirex_weighted']:.3f} |")
    result["wall_s"] = round(time.time() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "key_transfer.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k.startswith("all/") or k in ("tunes", "wall_s")}))


if __name__ == "__main__":
    main()
