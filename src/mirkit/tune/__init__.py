"""Fine-tuning and parameter-efficient transfer through one training loop (``mirkit tune``).

Methods (``METHODS``): probe, finetune, adapter, prompt, lora, ia3, bitfit, scratch. Results use
the format of ``mirkit probe`` plus a cost record, so ``mirkit report`` puts them side by side.
"""

from mirkit.tune.loop import TuneConfig
from mirkit.tune.methods import METHODS, MethodOptions
from mirkit.tune.run import load_tuned, tune_task

__all__ = ["METHODS", "MethodOptions", "TuneConfig", "load_tuned", "tune_task"]
