"""mirkit: music foundation models for real music-information-retrieval work.

Packages are layered. A package imports only from packages on lines above its own (never from its
own line, never from below), at module level or inside functions; ``tests/unit/test_layers.py``
reads this block and fails on an upward import or an import cycle between modules.

Layers:
    errors
    registry files options provenance
    audio metrics
    kinds
    encoders
    features
    data
    adapt
    train analysis
    tune retrieval hear pretrain boost
    robustness
    bench
    web
    cli

``errors`` is the error hierarchy; ``files`` the ground floor (atomic writes, hashing, JSON lines);
``options`` settings the command line is generated from; ``provenance`` versions and machine facts
recorded with results; ``audio`` decoding and checks; ``metrics`` scores, one module per task family;
``kinds`` the task kinds (what each kind's labels, targets, decoding and metrics are) and their peers;
``encoders`` the zoo; ``features`` the feature store and extraction; ``data`` tasks, manifests, the
offline suite and the pretraining corpus; ``adapt`` probing; ``train`` what every training loop
shares (checkpoints, schedule, optimizer step); ``analysis`` the shipped analysis heads and `mirkit analyze`; ``tune`` fine-tuning and parameter-efficient
methods; ``retrieval`` search; ``pretrain`` self-supervised pretraining; ``boost`` foundation
features injected into task models; ``robustness`` probes scored on perturbed test audio; ``bench`` the benchmark and
its reports; ``web`` the search page; ``cli`` the command line.
"""

__version__ = "0.1.0"


def analyze(path, **options):  # type: ignore[no-untyped-def]
    """Key, tempo, beats, chords, notes, instrument and tags of an audio file (a dict) or of every file of a
    folder (a list of dicts), with the heads shipped in the package: :func:`mirkit.analysis.run.analyze`."""
    from mirkit.analysis.run import analyze as run

    return run(path, **options)
