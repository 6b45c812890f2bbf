"""Robustness: trained probes scored on perturbed copies of a task's test split (``mirkit robustness``).

:mod:`~mirkit.robustness.perturb` holds the perturbations (level, filters, room, noise, lossy codecs);
:mod:`~mirkit.robustness.run` renders the perturbed test audio once per task and scores probe runs on it.
"""

from mirkit.robustness.perturb import DEFAULT_PERTURBATIONS, PERTURBATIONS, Perturbation, perturb_file

__all__ = ["DEFAULT_PERTURBATIONS", "PERTURBATIONS", "Perturbation", "perturb_file"]
