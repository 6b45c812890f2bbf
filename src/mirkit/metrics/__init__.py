"""MIR metrics, one module per task family, each ``validate -> metric -> evaluate``.

Every module has a Conventions section (units, shapes, label encoding). The heavy lifting is
scikit-learn's and mir_eval's; mirkit adds checks with clear errors and the task-level summary.
"""

from mirkit.metrics.chords import chord_overlap
from mirkit.metrics.classification import accuracy, evaluate_classification
from mirkit.metrics.key import evaluate_key, mirex_key_score
from mirkit.metrics.regression import evaluate_regression, r2_per_dimension
from mirkit.metrics.rhythm import beat_f_measure, downbeat_f_measure, evaluate_beats, evaluate_tempo, tempo_accuracy
from mirkit.metrics.tagging import evaluate_tagging
from mirkit.metrics.transcription import note_f1

__all__ = ["accuracy", "beat_f_measure", "chord_overlap", "downbeat_f_measure", "evaluate_beats",
           "evaluate_classification", "evaluate_key", "evaluate_regression", "evaluate_tagging", "evaluate_tempo",
           "mirex_key_score", "note_f1", "r2_per_dimension", "tempo_accuracy"]
