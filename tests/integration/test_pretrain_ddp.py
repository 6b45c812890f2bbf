"""`mirkit pretrain` under torchrun: two CPU processes (gloo) train what one process trains (dropout
off, masks and mixing drawn over the whole batch), a run checkpointed by one process resumes under
two, and a batch that does not split evenly is refused. Real processes, the tiny preset, a synthetic
corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mirkit.pretrain.config import PretrainConfig
from mirkit.pretrain.run import pretrain
from tests.conftest import make_corpus

CONFIG = PretrainConfig(preset="tiny", steps=4, batch_size=4, crop_s=2.0, checkpoint_every=2, stats_crops=8,
                        warmup_steps=1, codebook_size=64, dropout=0.0, accumulate=2)
ARGS = ["--preset", "tiny", "--steps", "4", "--batch-size", "4", "--crop-s", "2", "--checkpoint-every", "2",
        "--stats-crops", "8", "--warmup-steps", "1", "--codebook-size", "64", "--dropout", "0", "--accumulate", "2",
        "--workers", "0", "--no-progress"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def _torchrun(corpus: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "mirkit.cli.main", "pretrain", "--corpus", str(corpus), "--out", str(out), *ARGS,
                           *extra], capture_output=True, text=True, env=env, timeout=600)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "final" / "model.safetensors"))


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=2e-5) for k in a)


def test_two_processes_train_what_one_trains(corpus, tmp_path):
    alone = pretrain(corpus=corpus, out_dir=tmp_path / "one", config=CONFIG, workers=0, progress=False)
    done = _torchrun(corpus, tmp_path / "two")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Pretrained 4 steps by 2 processes") == 1  # rank 0 speaks for the job
    assert _close(_weights(tmp_path / "one"), _weights(tmp_path / "two"))
    one = [json.loads(line) for line in (tmp_path / "one" / "history.jsonl").read_text().splitlines()]
    two = [json.loads(line) for line in (tmp_path / "two" / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in two] == [1, 2, 3, 4]  # one writer: each step logged once
    # the loss of the whole batch, from the two halves' token-weighted means
    assert [round(r["ce"], 4) for r in one] == [round(r["ce"], 4) for r in two]
    assert alone is not None and alone.processes == 1


def test_a_run_checkpointed_alone_resumes_under_two_processes(corpus, tmp_path):
    whole = pretrain(corpus=corpus, out_dir=tmp_path / "whole", config=CONFIG, workers=0, progress=False)
    assert whole is not None
    assert pretrain(corpus=corpus, out_dir=tmp_path / "split", config=CONFIG, workers=0, progress=False,
                    stop_after_steps=2) is None
    done = _torchrun(corpus, tmp_path / "split")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(resumed at step 2) by 2 processes" in done.stdout
    assert _close(_weights(tmp_path / "whole"), _weights(tmp_path / "split"))


def test_a_batch_that_does_not_split_evenly_is_refused(corpus, tmp_path):
    done = _torchrun(corpus, tmp_path / "odd", "--batch-size", "5")
    assert done.returncode != 0
    assert "--batch-size 5 does not split evenly over the 2 processes" in done.stderr
    with pytest.raises(Exception, match="does not split over 2 processes"):
        from mirkit.pretrain.data import StreamSampler

        StreamSampler(0, 10, batch_size=5, rank=0, world_size=2)


def test_dropout_is_a_setting_and_old_runs_without_it_still_resume(corpus, tmp_path):
    from mirkit.errors import ConfigError

    with pytest.raises(ConfigError, match="dropout=1.5"):
        replace(CONFIG, dropout=1.5).validate()
    config = replace(CONFIG, dropout=None, accumulate=1)
    assert pretrain(corpus=corpus, out_dir=tmp_path / "old", config=config, workers=0, progress=False,
                    stop_after_steps=2) is None
    run_json = tmp_path / "old" / "run.json"
    info = json.loads(run_json.read_text())
    del info["config"]["dropout"]  # as a run written before the setting existed
    run_json.write_text(json.dumps(info))
    report = pretrain(corpus=corpus, out_dir=tmp_path / "old", config=config, workers=0, progress=False)
    assert report is not None and report.resumed_from_step == 2
