"""Self-supervised pretraining, MERT-style (``mirkit pretrain``), and its offline corpus (``mirkit data corpus``).

Masked prediction of discrete targets (BEST-RQ random-projection codes, or k-means codes of
log-mel + chroma frames) on span-masked tokens, plus MERT's musical teacher (CQT reconstruction of
the masked tokens) and in-batch noise mixing, in one resumable loop. The result is an encoder folder
that every command taking ``--encoder`` accepts. Facts: ``shared/PRETRAINING.md``.
"""
