"""What every training loop of mirkit shares: atomic checkpoints with RNG state (``checkpoint``),
the warm-up + cosine schedule and the clipped, finite-only optimizer step (``optim``). Used by
``mirkit tune`` and ``mirkit pretrain``."""
