"""Booster (SoniDo): frozen foundation-model features injected into task-specific models, measured
against the same models without them across training-data fractions."""

from mirkit.boost.models import TASK_MODELS
from mirkit.boost.run import boost_task
from mirkit.boost.train import BoostConfig

__all__ = ["BoostConfig", "TASK_MODELS", "boost_task"]
