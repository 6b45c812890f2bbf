"""Does the instrument head travel (issue #34)? Single notes of the suite's instruments played another way.

Every GM program of the instrument task (all 11 families), on every soundfont at hand (the suite's
training soundfonts and its test one) and with both renderers (tinysoundfont, and FluidSynth when it is
on the machine or can be fetched), is rendered as one note per playing condition, at a pitch drawn with
another seed than the suite's:

- ``soft``: velocity 20-45, held 1 s;  ``loud``: velocity 110-127, held 1 s;
- ``staccato``: velocity 60-100, held 0.1 s;  ``sustained``: velocity 60-100, held 2.8 s.

The shipped analyzer's instrument head (or ``--heads``) labels each note; accuracy overall and per
condition, renderer, soundfont and family. The target: at least 0.70 overall. Prints the tables and a
JSON line last; writes ``OUT/instrument_shift.json``.

    python benchmarks/instrument_shift.py --out runs/instrument-shift [--heads DIR] [--notes 1]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

CONDITIONS = {"soft": ((20, 45), 1.0), "loud": ((110, 127), 1.0), "staccato": ((60, 100), 0.1),
              "sustained": ((60, 100), 2.8)}
SEED = 20261207  # not a suite seed: other pitches than the suite's notes


def plan(*, notes: int, soundfonts: list[str], renderers: list[str]) -> list[dict]:
    from mirkit.data.notes import FAMILY_PROGRAMS, NOTE_S
    from mirkit.data.render import Score

    rng = random.Random(SEED)
    jobs = []
    for family, (programs, (low, high)) in FAMILY_PROGRAMS.items():
        for program in programs:
            for soundfont in soundfonts:
                for renderer in renderers:
                    for condition, ((v_low, v_high), hold_s) in CONDITIONS.items():
                        for k in range(notes):
                            pitch, velocity = rng.randint(low, high), rng.randint(v_low, v_high)
                            score = Score(duration_s=NOTE_S, programs={0: program})
                            score.add(0, pitch, 0.0, hold_s, velocity)
                            jobs.append({"name": f"{family}-p{program:03d}-{soundfont}-{renderer}-{condition}-{k}",
                                         "score": score, "soundfont": soundfont, "renderer": renderer,
                                         "split": "eval", "task": "notes", "family": family, "condition": condition})
    return jobs


def accuracy_by(rows: list[dict], field: str) -> dict[str, float]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        groups[str(row[field])].append(row["correct"])
    return {k: round(float(np.mean(v)), 3) for k, v in sorted(groups.items())}


def main() -> None:
    from mirkit.analysis.bundle import Bundle
    from mirkit.analysis.run import analyze_paths
    from mirkit.data import soundfonts as sf_lib
    from mirkit.data.suite_render import audio_path, choose_renderers, render_jobs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--heads", default=None, help="analysis bundle (default: the shipped heads)")
    parser.add_argument("--notes", type=int, default=1, help="notes per program, soundfont, renderer and condition")
    parser.add_argument("--renderers", default="auto", help="auto (tinysoundfont, and FluidSynth when at hand)")
    args = parser.parse_args()
    started = time.time()
    soundfonts = [name for name in sf_lib.SOUNDFONTS if sf_lib.locate(name)]
    material: dict[str, str] = {}
    renderers = choose_renderers(args.renderers, material)
    jobs = plan(notes=args.notes, soundfonts=soundfonts, renderers=renderers)
    render_jobs(jobs, args.out, workers=2, progress=False, desc="render notes")
    bundle = Bundle.load(args.heads)
    paths = [str(audio_path(job, str(args.out))) for job in jobs]
    report = analyze_paths(paths, bundle=bundle, tasks=["instrument"], store=args.out / "features", progress=False)
    predicted = {r["path"]: r["instrument"]["instrument"] for r in report.results}
    rows = [{**{k: job[k] for k in ("family", "condition", "soundfont", "renderer")},
             "predicted": predicted.get(path), "correct": predicted.get(path) == job["family"]}
            for job, path in zip(jobs, paths) if path in predicted]
    suite_fonts = bundle.info["suite"].get("soundfonts") or {}
    result: dict[str, object] = {
        "notes": len(rows), "skipped": len(jobs) - len(rows), "heads": str(bundle.path),
        "encoder": bundle.info["tasks"]["instrument"]["encoder"],
        "accuracy": round(float(np.mean([r["correct"] for r in rows])), 3),
        "by_condition": accuracy_by(rows, "condition"), "by_renderer": accuracy_by(rows, "renderer"),
        "by_soundfont": accuracy_by(rows, "soundfont"), "by_family": accuracy_by(rows, "family"),
        "suite_soundfonts": suite_fonts, "renderers": renderers, "wall_s": round(time.time() - started, 1)}
    confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        confusion[row["family"]][str(row["predicted"])] += 1
    result["most_confused"] = {f: max(c.items(), key=lambda kv: kv[1])[0] for f, c in confusion.items()}
    for field in ("by_condition", "by_renderer", "by_soundfont", "by_family"):
        print(f"{field}: {result[field]}")
    print(f"accuracy {result['accuracy']} over {len(rows)} notes (target 0.70); test soundfont of the suite: "
          f"{suite_fonts.get('test')}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "instrument_shift.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("accuracy", "notes", "by_condition", "by_renderer", "encoder")}))


if __name__ == "__main__":
    main()
