"""Analysis for users: ``mirkit analyze`` and the heads shipped with it (:mod:`~mirkit.analysis.bundle`,
:mod:`~mirkit.analysis.train`, :mod:`~mirkit.analysis.run`, :mod:`~mirkit.analysis.outputs`)."""
