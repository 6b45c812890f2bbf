"""`scripts/tune_table.sh` end to end on the tiny suite with its default (empty) EXTRA: every job runs
on its own line (xargs once joined them all into one command) and the report is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tune_table_runs_each_job_and_reports(tiny_suite, tmp_path):
    env = {**os.environ, "TASKS": "genre", "ENCODERS": "tiny-test", "METHODS": "probe bitfit", "SEEDS": "1",
           "EPOCHS": "1", "SCRATCH": "0", "BATCH": "4", "CROP_S": "1", "MIRKIT": f"{sys.executable} -m mirkit.cli.main"}
    env.pop("EXTRA", None)
    result = subprocess.run(["bash", str(ROOT / "scripts/tune_table.sh"), str(tiny_suite), str(tmp_path / "out")],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "failed" not in result.stdout, result.stdout[-2000:]
    for method in ("probe", "bitfit"):
        assert list((tmp_path / "out" / f"genre-tiny-test-{method}" / "results").glob("*.json")), method
    assert (tmp_path / "out" / "report.md").is_file()
