"""Concurrent ``extract`` runs on one store split the work (claims), and a killed run's claims do not
block the other for long. Real processes, the tiny encoder, synthetic audio."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mirkit.features import FeatureStore
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.store import ClaimOwner
from tests.conftest import sine, write

FILES = 12
RUNNER = """
import json, sys, time
from mirkit.features.extract import ExtractConfig, ExtractHooks, extract
delay = float(sys.argv[3])
report = extract(sys.argv[1], store=sys.argv[2], progress=False,
                 config=ExtractConfig(encoder="tiny-test", num_workers=0),
                 hooks=ExtractHooks(before_write=lambda: time.sleep(delay)))
print(json.dumps({"computed": report.computed, "cached": report.cached, "by_other_runs": report.by_other_runs,
                  "ids": len(report.item_ids), "skipped": report.num_skipped}))
"""


def _audio(folder: Path) -> Path:
    for k in range(FILES):
        write(folder / f"clip{k:02d}.wav", sine(200 + 40 * k, 1.0, 8000), 8000)
    return folder


def _start(audio: Path, store: Path, delay: float) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(audio), str(store), str(delay)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _items(store: Path) -> tuple[int, int]:
    recipes = list((store / "recipes").glob("*"))
    if not recipes:
        return 0, 0
    return len(list(recipes[0].glob("items/*/*.npz"))), len(list(recipes[0].glob("claims/*.json")))


def test_two_concurrent_runs_split_the_work(tmp_path):
    audio = _audio(tmp_path / "audio")
    runs = [_start(audio, tmp_path / "store", 0.3) for _ in range(2)]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["computed"] for r in results) == FILES, results  # nothing computed twice
    assert all(r["ids"] == FILES and r["computed"] + r["cached"] == FILES and not r["skipped"] for r in results)
    assert all(r["computed"] > 0 for r in results), results  # both did part of the work
    assert _items(tmp_path / "store") == (FILES, 0)  # every item stored, no claim left behind


def test_a_killed_runs_claims_are_taken_over(tmp_path):
    audio = _audio(tmp_path / "audio")
    slow = _start(audio, tmp_path / "store", 30.0)  # claims an item, then stalls before writing it
    deadline = time.time() + 120
    while _items(tmp_path / "store")[1] == 0 and time.time() < deadline:
        time.sleep(0.2)
    assert _items(tmp_path / "store")[1] >= 1, "the slow run never claimed an item"
    slow.send_signal(signal.SIGKILL)
    slow.wait(timeout=30)
    started = time.time()
    report = extract(audio, store=tmp_path / "store", progress=False,
                     config=ExtractConfig(encoder="tiny-test", num_workers=0))
    assert report.computed + report.cached == FILES and report.num_skipped == 0
    assert time.time() - started < 60  # the dead run's claim did not hold this one up
    assert _items(tmp_path / "store") == (FILES, 0)


def test_claims_belong_to_their_run(tmp_path):
    items = FeatureStore(tmp_path / "store").recipe(
        extract(_audio(tmp_path / "audio"), store=tmp_path / "store", progress=False,
                config=ExtractConfig(encoder="tiny-test", num_workers=0)).recipe)
    mine, other = ClaimOwner.current("run-a"), ClaimOwner.current("run-b")
    assert items.claim("abc", mine) is None and items.claim("abc", mine) is None  # a run may claim again
    assert items.claim("abc", other)["run"] == "run-a"  # a live claim of another run
    items.release("abc", other)  # not its claim: kept
    assert items.claim_holder("abc")["run"] == "run-a"
    items.release("abc", mine)
    assert items.claim_holder("abc") is None and items.claim("abc", other) is None
    dead = ClaimOwner("run-c", 2 ** 22 + 12345, mine.host)  # no such process
    (items.dir / "claims" / "def.json").write_text(json.dumps({"run": "run-c", "pid": dead.pid, "host": dead.host}))
    assert items.claim_holder("def") is None and items.claim("def", mine) is None  # a dead owner's claim is taken
