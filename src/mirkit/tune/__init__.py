"""Fine-tuning and parameter-efficient transfer through one training loop (``mirkit tune``).

Methods (``METHODS``, one module each in :mod:`mirkit.tune.methods`): probe, finetune, adapter,
prompt, lora, dora, ia3, bitfit, scratch. Results use the format of ``mirkit probe`` plus a cost
record, so ``mirkit report`` puts them side by side.
"""

from mirkit.tune.config import TuneConfig
from mirkit.tune.methods import METHODS, MethodConfig, apply_method, get_method
from mirkit.tune.run import load_tuned, tune_task

__all__ = ["METHODS", "MethodConfig", "TuneConfig", "apply_method", "get_method", "load_tuned", "tune_task"]
