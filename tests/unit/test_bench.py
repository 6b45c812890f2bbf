"""Report helpers: validation-only model selection, peer key spelling, missing peers named."""

from __future__ import annotations

import pytest

from mirkit.bench.collect import Row, best_rows
from mirkit.bench.peers import run_peer
from mirkit.bench.report import leaderboard
from mirkit.errors import MirkitError
from mirkit.kinds import PEERS, PeerSpec
from mirkit.kinds.labels import sharp_key


def _row(job: str, valid: float, test: float, *, name: str = "enc", group: str = "pretrained") -> Row:
    return Row(task="genre", name=name, group=group, job=job, layer_label=job, pooling="mean", seeds=3,
               test={"headline": (test, 0.01), "accuracy": (test, 0.01)}, valid_headline=valid)


def test_best_layer_is_chosen_on_validation_never_on_test():
    rows = [_row("layer0", valid=0.9, test=0.5), _row("layer1", valid=0.6, test=0.95), _row("weighted", 0.99, 0.99)]
    best = best_rows(rows)
    assert best[("genre", "enc")].job == "layer0"  # layer1 tests better, but selection never sees the test split
    table = leaderboard(rows + [_row("-", float("nan"), 0.7, name="tool", group="peer")], "genre")
    assert [r[1] for r in table.rows] == ["enc", "tool", "enc"]  # sorted by test score: weighted, peer, layer0
    assert table.rows[2][3] == "layer0" and table.rows[0][3] == "weighted"
    assert table.rows[1][-1] == "-"  # peers have no validation score


def test_flat_keys_are_spelled_with_sharps():
    assert sharp_key("Bb minor") == "A# minor" and sharp_key("C Major") == "C major"
    assert sharp_key("F# major") == "F# major"
    from mirkit.kinds import get_kind

    # a peer's flat spelling scores as its sharp (the key kind reads both)
    assert get_kind("key").score(["A# minor", "C major"], ["Bb minor", "C Major"])["headline"] == 1.0


def test_a_peer_that_is_not_installed_says_how_to_install_it(tmp_path):
    spec = PeerSpec("ghost", "tempo", "no-such-package-mirkit", "AGPL-3.0", 44100, "absent", lambda s: lambda y: 0.0)
    with pytest.raises(MirkitError, match="pip install no-such-package-mirkit"):
        run_peer(spec, tmp_path)
    assert {PEERS.get(n).kind for n in ("librosa-beat", "librosa-ks")} == {"tempo", "key"}


def test_progress_line_reports_the_layer_chosen_on_validation_not_test():
    from mirkit.adapt.results import validated_layer

    summary = {"layers": {
        "layer0": {"valid_headline": 0.9, "headline": {"mean": 0.5}},
        "layer1": {"valid_headline": 0.6, "headline": {"mean": 0.8}},  # best on test: must not be chosen
        "weighted": {"valid_headline": 0.95, "headline": {"mean": 0.9}},  # reported beside, never chosen
    }}
    assert validated_layer(summary)[0] == "layer0"


def _seeded(name: str, task: str, job: str, valid: float, seeds: list[float]) -> Row:
    mean = sum(seeds) / len(seeds)
    return Row(task=task, name=name, group="random-init twin" if name.startswith("random:") else "pretrained", job=job,
               layer_label=job, pooling="mean", seeds=len(seeds), test={"headline": (mean, 0.0)}, valid_headline=valid,
               test_range={"headline": (min(seeds), max(seeds))})


def test_pretrained_vs_twin_counts_only_seed_ranges_apart_and_chooses_on_validation():
    from mirkit.bench.twins import twin_blocks, twin_comparisons

    rows = [
        # key: the pretrained side's best-validated job is layer0 (its test-best layer1 must not be used)
        _seeded("enc", "key", "layer0", 0.8, [0.70, 0.72, 0.71]), _seeded("enc", "key", "layer1", 0.5, [0.99] * 3),
        _seeded("random:enc", "key", "weighted", 0.7, [0.60, 0.65, 0.62]),
        # tempo: ranges overlap (0.50-0.56 vs 0.55-0.60): a tie even though the mean is lower
        _seeded("enc", "tempo", "layer2", 0.5, [0.50, 0.53, 0.56]),
        _seeded("random:enc", "tempo", "layer2", 0.5, [0.55, 0.58, 0.60]),
        # genre: the twin wins outright
        _seeded("enc", "genre", "layer1", 0.5, [0.30, 0.31, 0.32]),
        _seeded("random:enc", "genre", "layer1", 0.5, [0.40, 0.41, 0.42]),
        _seeded("other", "genre", "layer0", 0.9, [0.9] * 3),  # no twin: not compared
    ]
    found = {(c.encoder, c.task): c for c in twin_comparisons(rows, ["key", "tempo", "genre", "pitch"])}
    assert set(found) == {("enc", "key"), ("enc", "tempo"), ("enc", "genre")}
    assert found[("enc", "key")].pretrained.job == "layer0" and found[("enc", "key")].twin.job == "weighted"
    assert [found[("enc", t)].verdict for t in ("key", "tempo", "genre")] == ["pretrained", "overlap", "twin"]
    blocks = twin_blocks(rows, ["key", "tempo", "genre"])
    assert any(kind == "p" and "enc beats its random-init twin on 1 of 3 tasks" in str(text) and "(genre)" in str(text)
               for kind, text in blocks)
    assert twin_blocks([r for r in rows if not r.name.startswith("random:")], ["key"]) == []


def test_tempo_rows_come_from_the_beat_probe_chosen_on_beat_validation_and_face_the_peers():
    from mirkit.bench.report import derived_rows, versus_peers

    def beat(job: str, valid_f: float, tempo: float) -> Row:
        return Row(task="beat", name="enc", group="pretrained", job=job, layer_label=job, pooling="every frame",
                   seeds=3, test={"headline": (0.7, 0.0), "tempo_acc1": (tempo, 0.01), "tempo_acc2": (0.9, 0.0)},
                   valid_headline=valid_f, test_range={"tempo_acc1": (tempo - 0.02, tempo + 0.02)},
                   valid={"tempo_acc1": 0.5})

    clip = Row(task="tempo", name="enc", group="pretrained", job="layer0", layer_label="layer0", pooling="mean",
               seeds=3, test={"headline": (0.1, 0.0)}, valid_headline=0.2, test_range={"headline": (0.09, 0.11)})
    peer = Row(task="tempo", name="librosa-beat", group="peer", job="-", layer_label="librosa", pooling="-", seeds=1,
               test={"headline": (0.55, 0.0)}, valid_headline=float("nan"))
    # layer1 has the better beat validation F, layer0 the better (unseen) test tempo: layer1 is used
    rows = [beat("layer0", 0.6, 0.9), beat("layer1", 0.8, 0.6), clip, peer]
    (derived,) = derived_rows(rows, "tempo")
    assert derived.job == "layer1" and derived.headline[0] == 0.6 and derived.test["acc2"][0] == 0.9
    assert derived.group == "pretrained, beat probe" and derived.valid_headline == 0.5
    assert derived_rows(rows, "genre") == []
    table = leaderboard(rows, "tempo")
    assert [r[1] for r in table.rows] == ["enc", "librosa-beat", "enc"]  # by test score: derived, peer, clip probe
    line = versus_peers(rows, "tempo")
    assert line is not None and "enc (layer1, beat probe" in line and "librosa-beat 0.550" in line
    assert "above it in every seed" in line  # 0.58-0.62 against 0.55
    rows[1] = beat("layer1", 0.8, 0.55)
    assert "level with it" in versus_peers(rows, "tempo")
    assert versus_peers([clip], "tempo") is None  # no peer: nothing to say
