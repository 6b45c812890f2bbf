"""`mirkit tune` under torchrun: two CPU processes (gloo) train what one process trains, and a run
checkpointed by one process resumes under two. Real processes, the tiny encoder and suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mirkit.tune import TuneConfig, tune_task

ARGS = ["--encoder", "tiny-test", "--method", "finetune", "--epochs", "2", "--batch-size", "4", "--crop-s", "1",
        "--seeds", "1", "--checkpoint-every", "1", "--no-progress"]
CONFIG = TuneConfig(method="finetune", max_epochs=2, batch_size=4, crop_s=1.0, checkpoint_every=1)


def _torchrun(task: Path, out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "mirkit.cli.main", "tune", "--task", str(task), "--out", str(out), *ARGS],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("test headline") == 1  # rank 0 speaks for the job


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "seed0" / "best.safetensors"))


def _result(run: Path) -> dict:
    return json.loads(next((run / "results").glob("*.json")).read_text())


@pytest.mark.parametrize("task", ["genre", "beat"])
def test_two_processes_train_what_one_trains(tiny_suite, tmp_path, task):
    tune_task(task_dir=tiny_suite / task, encoder="tiny-test", out_dir=tmp_path / "one", config=CONFIG, seeds=1,
              progress=False)
    _torchrun(tiny_suite / task, tmp_path / "two")
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert one.keys() == two.keys() and all(torch.allclose(one[k], two[k], atol=1e-5) for k in one)
    assert _result(tmp_path / "two")["cost"]["processes"] == 2
    assert [h["epoch"] for h in _result(tmp_path / "one")["history"]] == [h["epoch"] for h in
                                                                          _result(tmp_path / "two")["history"]]


def test_a_run_checkpointed_alone_resumes_under_two_processes(tiny_suite, tmp_path):
    args = dict(task_dir=tiny_suite / "genre", encoder="tiny-test", config=CONFIG, seeds=1, progress=False)
    tune_task(out_dir=tmp_path / "whole", **args)
    assert tune_task(out_dir=tmp_path / "split", stop_after_steps=3, **args) == {"stopped": True}
    _torchrun(tiny_suite / "genre", tmp_path / "split")
    whole, split = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert all(torch.allclose(whole[k], split[k], atol=1e-5) for k in whole)
    assert _result(tmp_path / "split")["cost"]["resumed_from_step"] == 3


def test_too_small_a_batch_for_the_processes_is_refused(tiny_suite, tmp_path, monkeypatch):
    from mirkit.errors import ConfigError
    from mirkit.train.distributed import Distributed

    monkeypatch.setattr("mirkit.tune.loop.context", lambda device: Distributed(0, 4, 0))
    with pytest.raises(ConfigError, match="smaller than the 4 processes"):
        tune_task(task_dir=tiny_suite / "genre", encoder="tiny-test", out_dir=tmp_path, seeds=1, progress=False,
                  config=replace(CONFIG, batch_size=2))
