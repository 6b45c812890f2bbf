"""Suite-level tests moved from ``tests/unit/test_pretrain.py`` (they build the tiny suite): `mirkit pretrain`: masking, targets, the CQT teacher, mixing, the loss, resume equality, bad input,"""

from __future__ import annotations

import json
from dataclasses import replace

from mirkit.pretrain.run import pretrain
from tests.unit.test_pretrain import TINY


def test_the_output_feeds_probe(corpus, tiny_suite, tmp_path):
    from mirkit.adapt.config import ProbeRunConfig
    from mirkit.adapt.run import probe_task

    pretrain(corpus=corpus, out_dir=tmp_path / "run", config=replace(TINY, steps=2), progress=False, workers=0,
             eval_task=tiny_suite / "genre")
    evals = [json.loads(line) for line in (tmp_path / "run/eval.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [2] and 0 <= evals[0]["valid_headline"] <= 1
    assert not any("test" in key for key in evals[0])  # the test split is never shown while training
    summary = probe_task(ProbeRunConfig(task_dir=tiny_suite / "genre", encoder=str(tmp_path / "run/final"), out_dir=tmp_path / "probe",
                         store=tmp_path / "store", seeds=1, progress=False))
    assert summary["jobs"]["trained"] == 3 and 0 <= summary["layers"]["layer2"]["headline"]["mean"] <= 1
    # a folder encoder's results are plain files of the run (a path in the name must not make subfolders)
    results = sorted((tmp_path / "probe/results").rglob("*.json"))
    assert len(results) == 3 and all(p.parent == tmp_path / "probe/results" for p in results)
