"""Metrics on cases with known answers, including ones that must come out wrong."""

from __future__ import annotations

import numpy as np
import pytest

from mirkit.errors import ConfigError
from mirkit.metrics import (
    accuracy,
    beat_f_measure,
    evaluate_key,
    evaluate_regression,
    evaluate_tagging,
    evaluate_tempo,
    mirex_key_score,
    note_f1,
    tempo_accuracy,
)


def test_accuracy_and_a_wrong_answer():
    assert accuracy(["rock", "jazz", "pop", "pop"], ["rock", "jazz", "pop", "rock"]) == 0.75
    assert accuracy(["a", "b"], ["b", "a"]) == 0.0
    with pytest.raises(ConfigError, match="reference has 2 items but estimate has 1"):
        accuracy(["a", "b"], ["a"])


def test_tagging_matches_sklearn_and_perfect_vs_inverted():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    ref = rng.integers(0, 2, (40, 5))
    ref[0], ref[1] = 1, 0
    scores = ref + rng.normal(0, 0.8, ref.shape)
    out = evaluate_tagging(ref, scores)
    assert out["roc_auc"] == pytest.approx(roc_auc_score(ref, scores, average="macro"))
    assert out["average_precision"] == pytest.approx(average_precision_score(ref, scores, average="macro"))
    assert evaluate_tagging(ref, ref.astype(float))["roc_auc"] == 1.0
    assert evaluate_tagging(ref, -ref.astype(float))["roc_auc"] == 0.0  # inverted scores must score worst
    constant = ref.copy()
    constant[:, 4] = 0
    assert evaluate_tagging(constant, scores)["tags_skipped"] == 1.0
    with pytest.raises(ConfigError, match="reference must be binary"):
        evaluate_tagging(scores, scores)


def test_r2_per_dimension():
    ref = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0], [4.0, 8.0]])
    out = evaluate_regression(ref, ref)
    assert out["r2_0"] == out["r2_1"] == 1.0
    mean_guess = np.tile(ref.mean(axis=0), (4, 1))
    assert evaluate_regression(ref, mean_guess)["r2"] == pytest.approx(0.0)
    assert evaluate_regression(ref, ref[::-1])["r2"] < 0  # anti-correlated estimate: worse than the mean


def test_mirex_key_weights():
    assert mirex_key_score(["C major"], ["C major"]) == 1.0
    assert mirex_key_score(["C major"], ["G major"]) == 0.5  # fifth
    assert mirex_key_score(["C major"], ["A minor"]) == 0.3  # relative
    assert mirex_key_score(["C major"], ["C minor"]) == 0.2  # parallel
    assert mirex_key_score(["C major"], ["F# major"]) == 0.0
    assert evaluate_key(["D# minor", "Eb minor"], ["Eb minor", "D# minor"])["mirex_weighted"] == 1.0
    with pytest.raises(ConfigError, match="'H major' is not a key string"):
        mirex_key_score(["H major"], ["C major"])


def test_tempo_acc1_acc2():
    assert tempo_accuracy([120, 120, 120, 120], [121, 60, 240, 100]) == (0.25, 0.75)
    assert evaluate_tempo([100.0], [104.0])["acc1"] == 1.0 and evaluate_tempo([100.0], [104.5])["acc1"] == 0.0
    with pytest.raises(ConfigError, match="implausible as BPM"):
        tempo_accuracy([500000.0], [120.0])


def test_beat_f_measure_against_mir_eval():
    beats = np.arange(5.0, 30.0, 0.5)
    assert beat_f_measure([beats], [beats + 0.03]) == 1.0  # within 70 ms
    assert beat_f_measure([beats], [beats + 0.25]) == 0.0  # off-beat: must score zero
    with pytest.raises(ConfigError, match="pass seconds"):
        beat_f_measure([beats * 44100], [beats])


def test_note_f1():
    ref = [(0.0, 0.5, 60), (0.5, 1.0, 64), (1.0, 1.5, 67)]
    assert note_f1(ref, ref)["f1"] == 1.0
    shifted = [(s + 0.03, e, p) for s, e, p in ref]
    assert note_f1(ref, shifted)["f1"] == 1.0  # 30 ms onset error is inside 50 ms
    wrong_pitch = [(s, e, p + 1) for s, e, p in ref]
    assert note_f1(ref, wrong_pitch)["f1"] == 0.0
    half = note_f1(ref, ref[:1] + [(2.0, 2.5, 72)])
    assert half["precision"] == 0.5 and half["recall"] == pytest.approx(1 / 3)
    with pytest.raises(ConfigError, match="MIDI numbers"):
        note_f1([(0.0, 0.5, 440.0)], ref)


def test_balanced_accuracy_with_a_class_missing_from_the_reference_is_quiet_and_counts_it_wrong():
    import warnings

    from mirkit.metrics.classification import evaluate_classification

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        scores = evaluate_classification(["a", "a", "b", "b"], ["a", "c", "b", "b"])
    assert scores["accuracy"] == 0.75 and scores["balanced_accuracy"] == 0.75  # recall a 0.5, b 1.0


def test_beat_continuity_and_downbeats_against_mir_eval_and_cases_that_must_score_zero():
    import mir_eval

    from mirkit.metrics import downbeat_f_measure, evaluate_beats

    beats = np.arange(0, 30, 0.5)  # 120 BPM
    perfect = evaluate_beats([beats], [beats])
    assert perfect == {"f_measure": 1.0, "cmlt": 1.0, "amlt": 1.0}
    double = evaluate_beats([beats], [np.arange(0, 30, 0.25)])  # twice the tempo: another metrical level
    assert double["cmlt"] == 0.0 and double["amlt"] > 0.95 and double["f_measure"] < 1.0
    offbeat = evaluate_beats([beats], [beats + 0.25])  # every estimate half a beat late
    assert offbeat["f_measure"] == 0.0 and offbeat["cmlt"] == 0.0
    rng = np.random.default_rng(0)
    jittered = np.sort(beats + rng.normal(0, 0.03, len(beats)))
    ref, est = mir_eval.beat.trim_beats(beats), mir_eval.beat.trim_beats(jittered)
    got = evaluate_beats([beats], [jittered])
    assert got["f_measure"] == pytest.approx(mir_eval.beat.f_measure(ref, est))
    assert got["cmlt"] == pytest.approx(mir_eval.beat.continuity(ref, est)[1])
    downbeats = beats[::4]
    assert downbeat_f_measure([downbeats], [downbeats]) == 1.0
    assert downbeat_f_measure([downbeats], [beats[2::4]]) == 0.0  # beat 3 of every bar is not a downbeat
    with pytest.raises(ConfigError, match="strictly increasing"):
        evaluate_beats([beats[::-1]], [beats])


def test_chord_overlap_against_mir_eval_and_cases_that_must_score_zero():
    from mirkit.metrics import chord_overlap

    intervals = np.array([[0.0, 2.0], [2.0, 4.0], [4.0, 6.0]])
    labels = ["C:maj", "A:min", "G:maj"]
    assert chord_overlap([(intervals, labels)], [(intervals, labels)]) == {"majmin": 1.0, "root": 1.0}
    # right roots, wrong qualities: root 1, majmin 0
    swapped = chord_overlap([(intervals, labels)], [(intervals, ["C:min", "A:maj", "G:min"])])
    assert swapped == {"majmin": 0.0, "root": 1.0}
    # half of the time right: an estimate that changes chord one second late
    late = chord_overlap([(intervals, labels)], [(np.array([[0.0, 3.0], [3.0, 5.0], [5.0, 6.0]]), labels)])
    assert late["majmin"] == pytest.approx(4 / 6) and late["root"] == pytest.approx(4 / 6)
    with pytest.raises(ConfigError, match="Harte syntax"):
        chord_overlap([(intervals, labels)], [(intervals, ["C major", "A:min", "G:maj"])])
    with pytest.raises(ConfigError, match="sorted without overlaps"):
        chord_overlap([(intervals[::-1], labels)], [(intervals, labels)])
