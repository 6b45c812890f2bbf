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
    assert {PEERS.get(n).kind for n in ("librosa-tempo", "librosa-ks")} == {"tempo", "key"}


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
    from mirkit.bench.collect import derived_rows
    from mirkit.bench.report import versus_peers

    def beat(job: str, valid_f: float, tempo: float) -> Row:
        return Row(task="beat", name="enc", group="pretrained", job=job, layer_label=job, pooling="every frame",
                   seeds=3, test={"headline": (0.7, 0.0), "tempo_acc1": (tempo, 0.01), "tempo_acc2": (0.9, 0.0)},
                   valid_headline=valid_f, test_range={"tempo_acc1": (tempo - 0.02, tempo + 0.02)},
                   valid={"tempo_acc1": 0.5})

    clip = Row(task="tempo", name="enc", group="pretrained", job="layer0", layer_label="layer0", pooling="mean",
               seeds=3, test={"headline": (0.1, 0.0)}, valid_headline=0.2, test_range={"headline": (0.09, 0.11)})
    peer = Row(task="tempo", name="librosa-tempo", group="peer", job="-", layer_label="librosa", pooling="-", seeds=1,
               test={"headline": (0.55, 0.0)}, valid_headline=float("nan"))
    # layer1 has the better beat validation F, layer0 the better (unseen) test tempo: layer1 is used
    rows = [beat("layer0", 0.6, 0.9), beat("layer1", 0.8, 0.6), clip, peer]
    (derived,) = derived_rows(rows, "tempo")
    assert derived.job == "layer1" and derived.headline[0] == 0.6 and derived.test["acc2"][0] == 0.9
    assert derived.group == "pretrained, beat probe" and derived.valid_headline == 0.5
    assert derived_rows(rows, "genre") == []
    table = leaderboard(rows, "tempo")
    assert [r[1] for r in table.rows] == ["enc", "librosa-tempo", "enc"]  # by test score: derived, peer, clip probe
    line = versus_peers(rows, "tempo")
    assert line is not None and "enc (layer1, beat probe" in line and "librosa-tempo 0.550" in line
    assert "above it in every seed" in line  # 0.58-0.62 against 0.55
    rows[1] = beat("layer1", 0.8, 0.55)
    assert "level with it" in versus_peers(rows, "tempo")
    assert versus_peers([clip], "tempo") is None  # no peer: nothing to say


def test_the_heatmap_shows_the_row_the_tables_choose_beat_probes_included(tmp_path, monkeypatch):
    import mirkit.bench.plots as plots
    from mirkit.bench.collect import chosen_row

    beat = Row(task="beat", name="enc", group="pretrained", job="layer1", layer_label="layer1", pooling="every frame",
               seeds=1, test={"headline": (0.7, 0.0), "tempo_acc1": (0.6, 0.0)}, valid_headline=0.8,
               valid={"tempo_acc1": 0.5})
    clip = Row(task="tempo", name="enc", group="pretrained", job="layer0", layer_label="layer0", pooling="mean",
               seeds=3, test={"headline": (0.1, 0.0)}, valid_headline=0.2)
    weighted = Row(task="key", name="enc", group="pretrained", job="weighted", layer_label="weighted", pooling="mean",
                   seeds=3, test={"headline": (0.4, 0.0)}, valid_headline=0.9)
    key = Row(task="key", name="enc", group="pretrained", job="layer2", layer_label="layer2", pooling="mean",
              seeds=3, test={"headline": (0.5, 0.0)}, valid_headline=0.6)
    peer = Row(task="tempo", name="librosa-tempo", group="peer", job="-", layer_label="-", pooling="-", seeds=1,
               test={"headline": (0.55, 0.0)}, valid_headline=float("nan"))
    rows = [beat, clip, weighted, key, peer]
    tempo = chosen_row(rows, "tempo", "enc")
    assert tempo.headline[0] == 0.6 and plots.cell_mark(tempo) == "b"  # the beat probe (valid 0.5) beats the clip (0.2)
    assert chosen_row(rows, "key", "enc") is weighted and plots.cell_mark(weighted) == "w"
    assert chosen_row(rows, "tempo", "librosa-tempo") is peer and chosen_row(rows, "genre", "enc") is None
    texts = []
    original = plots.pyplot

    def recording_pyplot():
        plt = original()
        real_subplots = plt.subplots

        def subplots(*args, **kwargs):
            fig, ax = real_subplots(*args, **kwargs)
            real_text = ax.text
            ax.text = lambda x, y, s, **kw: texts.append(s) or real_text(x, y, s, **kw)
            return fig, ax

        monkeypatch.setattr(plt, "subplots", subplots)
        return plt

    monkeypatch.setattr(plots, "pyplot", recording_pyplot)
    assert plots.heatmap(rows, tmp_path / "h.png").is_file()
    assert {"0.60b", "0.40w", "0.55", "0.70"} <= set(texts), texts


def test_renamed_peers_are_read_under_their_new_names_from_old_result_files(tmp_path):
    import json

    from mirkit.bench.collect import collect
    from mirkit.kinds import current_name, get_peer

    assert get_peer("librosa-beat").name == "librosa-tempo" and get_peer("librosa-beats").name == "librosa-beat-track"
    assert current_name("librosa-ks") == "librosa-ks"
    runs = tmp_path / "runs"
    (runs / "peers").mkdir(parents=True)
    (runs / "real_tempo").mkdir()
    (runs / "bench.json").write_text(json.dumps({"tasks": ["tempo"], "peers": ["librosa-beat", "librosa-ks"]}))
    record = {"task": "tempo", "package": "librosa", "version": "0.11.0", "test": {"headline": 0.5, "acc1": 0.5},
              "wall_s": 1.0, "clips": 32, "skipped": {}}
    (runs / "peers" / "tempo__librosa-beat.json").write_text(json.dumps({**record, "peer": "librosa-beat"}))
    (runs / "real_tempo" / "librosa-beat.json").write_text(json.dumps({"name": "librosa-beat", "kind": "peer",
                                                                       "test": {"acc1": 0.75, "acc2": 1.0}}))
    rows, context = collect(runs)
    assert [r.name for r in rows] == ["librosa-tempo"] and context["plan"]["peers"] == ["librosa-tempo", "librosa-ks"]
    assert [r["name"] for r in context["real_tempo"]] == ["librosa-tempo"]
    # a rerun after the rename writes the new name; the old file gives way to it, no duplicate row
    (runs / "peers" / "tempo__librosa-tempo.json").write_text(json.dumps({**record, "peer": "librosa-tempo",
                                                                          "test": {"headline": 0.6}}))
    rows, _ = collect(runs)
    assert [(r.name, r.headline[0]) for r in rows] == [("librosa-tempo", 0.6)]
