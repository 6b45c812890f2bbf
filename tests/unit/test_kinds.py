"""Task kinds carry their behaviour: every registered kind answers what the pipelines ask of it, and
no module outside ``mirkit/kinds`` decides anything by comparing a kind with a kind's name."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from mirkit.errors import ConfigError, UnknownNameError
from mirkit.kinds import KINDS, PEERS, ClipKind, FrameKind, clip_kind, frame_kind, get_kind, kinds_of_level

SRC = Path(__file__).resolve().parents[2] / "src" / "mirkit"


def _kind_comparisons(tree: ast.AST, names: set[str]) -> list[str]:
    """``x.kind == "beat"``, ``meta["kind"] in ("beat", "chords")``...: comparisons of a name ending in
    ``kind`` with string literals among ``names``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        left = node.left
        if isinstance(left, ast.Subscript) and isinstance(left.slice, ast.Constant):  # meta["kind"]
            label = str(left.slice.value)
        else:
            label = left.attr if isinstance(left, ast.Attribute) else left.id if isinstance(left, ast.Name) else ""
        if not label.endswith("kind"):
            continue
        for comparator in node.comparators:
            values = comparator.elts if isinstance(comparator, (ast.Tuple, ast.List, ast.Set)) else [comparator]
            literals = {v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)}
            if literals & names:
                found.append(f"line {node.lineno}: {label} vs {sorted(literals & names)}")
    return found


def test_no_module_outside_the_kinds_compares_a_kind_with_a_name():
    names = set(KINDS)
    offenders = {}
    for path in sorted(SRC.rglob("*.py")):
        if "kinds" in path.relative_to(SRC).parts:
            continue
        found = _kind_comparisons(ast.parse(path.read_text()), names)
        if found:
            offenders[str(path.relative_to(SRC))] = found
    assert offenders == {}


def test_the_scan_finds_such_a_comparison():
    tree = ast.parse('if meta["kind"] in ("beat", "chords"): pass\nif spec.kind != "key": pass\nif kind == "xattn": pass')
    assert _kind_comparisons(tree, {"beat", "chords", "key"}) == ["line 1: kind vs ['beat', 'chords']",
                                                                   "line 2: kind vs ['key']"]


def test_levels_and_lookups():
    assert set(kinds_of_level("clip")) == {"multiclass", "key", "multilabel", "regression", "tempo"}
    assert {"beat", "chords", "transcription", "onsets"} <= set(kinds_of_level("frame"))
    assert isinstance(clip_kind("key"), ClipKind) and isinstance(frame_kind("onsets"), FrameKind)
    with pytest.raises(ConfigError, match="not a clip-level one"):
        clip_kind("beat")
    with pytest.raises(ConfigError, match="separation"):
        clip_kind("separation")
    with pytest.raises(UnknownNameError, match="Did you mean 'onsets'"):
        get_kind("onset")


@pytest.mark.parametrize("name", kinds_of_level("frame"))
def test_every_frame_kind_encodes_decodes_and_scores_its_own_labels(name):
    """Targets built from a clip's labels, used as the activation, decode to events that score perfectly
    on the headline (each kind's decoder inverts its own targets on a clean grid)."""
    kind = frame_kind(name)
    rate, times = 50.0, np.arange(400) / 50.0
    labels = {
        "beat": {"beats": [0.5 * k for k in range(1, 16)], "downbeats": [0.5 * k for k in range(1, 16, 4)], "bpm": 120.0},
        "chords": {"chords": [[0.0, 4.0, "C:maj"], [4.0, 8.0, "A:min"]]},
        "transcription": {"notes": [{"onset_s": 1.0, "offset_s": 2.0, "pitch": 60},
                                    {"onset_s": 3.0, "offset_s": 4.5, "pitch": 67}]},
        "onsets": {"onsets": [0.5, 1.2, 2.0, 3.4, 5.0, 7.1]},
    }[name]
    assert kind.label_problem(labels, duration_s=8.0) is None
    target = kind.encode(labels, times, rate_hz=rate)
    if kind.categorical:
        activation = np.eye(kind.outputs)[target]
    else:
        activation = target.reshape(len(times), kind.outputs)
    assert activation.shape == (400, kind.outputs)
    decoded = kind.decode(activation, times, rate_hz=rate, context=kind.decode_context([labels]))
    scores = kind.score([labels], [decoded])
    assert scores["headline"] == scores[kind.headline] and scores["headline"] > 0.9, scores
    row = kind.to_row(decoded)
    assert set(row) <= set(decoded) and row  # JSON-ready events
    if not kind.categorical:
        silent = kind.score([labels], [kind.decode(np.zeros_like(activation), times, rate_hz=rate)])
        assert silent["headline"] < scores["headline"]  # the score can fail: nothing found scores lower


@pytest.mark.parametrize("name", kinds_of_level("clip"))
def test_every_clip_kind_round_trips_its_labels_and_scores_them(name):
    kind = clip_kind(name)
    labels = {"multiclass": ["a", "b", "a", "c"], "key": ["C major", "A minor", "G major", "E minor"],
              "multilabel": [["x"], ["y"], ["x", "y"], []], "regression": [[0.1, 0.5], [0.4, 0.2], [0.9, 0.7],
                                                                           [0.3, 0.3]],
              "tempo": [90.0, 120.0, 150.0, 60.0]}[name]
    classes = kind.classes(labels, ())
    encoded = kind.encode(labels, classes)
    outputs = (np.eye(len(classes))[encoded] * 10 if kind.categorical else
               (encoded * 20 - 10) if kind.loss == "binary_cross_entropy" else encoded)
    scores = kind.evaluate(labels, outputs, classes)
    assert scores["headline"] == scores[kind.headline] == pytest.approx(1.0), scores
    batch = kind.headline_batch(encoded, np.stack([outputs, outputs[::-1]]), classes)
    assert batch[0] == pytest.approx(1.0) and batch[1] < batch[0]  # the vectorised headline, and it can fail


def test_every_peer_estimates_a_registered_kind():
    assert all(spec.kind in KINDS for _, spec in PEERS.items())
    assert {"librosa-onsets", "librosa-beat-track", "chroma-templates"} <= set(PEERS)
