"""`mirkit bench --jobs N`: a worker process that dies does not take the bench down: the units it had
not finished go to fresh workers, and a unit that kills its worker twice is recorded as a failure."""

from __future__ import annotations

import os
from pathlib import Path

from mirkit.bench.config import BenchConfig
from mirkit.bench.runner import BenchReport, _run_parallel
from mirkit.bench.units import Outcome


def crashing_runner(unit, config, peer_names):
    """Runs in a spawned worker: ``crash`` always kills it, ``once`` kills it the first time only."""
    marker = Path(config.out_dir) / f"{unit[2]}.seen"
    if unit[2] == "crash" or (unit[2] == "once" and not marker.exists()):
        marker.touch()
        os._exit(3)  # no exception, no clean-up: as a segfault in native code ends a worker
    return Outcome(pairs=1, trained=1, lines=[f"  {unit[1]} {unit[2]} ok"])


def test_a_dead_worker_loses_only_the_unit_that_keeps_killing_it(tmp_path, capsys):
    report = BenchReport(out_dir=str(tmp_path))
    units = [("pair", "genre", name) for name in ("a", "once", "b", "crash", "c")]
    _run_parallel(report, units, 2, config=BenchConfig(suite_dir=tmp_path, out_dir=tmp_path), peer_names=[],
                  runner=crashing_runner)
    printed = capsys.readouterr().out
    assert report.pairs == 5 and report.jobs_trained == 4
    assert [f["name"] for f in report.failures] == ["crash"] and "died" in report.failures[0]["error"]
    assert (tmp_path / "failures" / "genre__crash.json").is_file()
    for name in ("a", "once", "b", "c"):
        assert printed.count(f"genre {name} ok") == 1  # every other unit finished exactly once
    assert "a worker process died" in printed
