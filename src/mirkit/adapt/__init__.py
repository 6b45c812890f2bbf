"""Adaptation of encoders to tasks on cached features: probes (linear or MLP, per layer and learned layer
weighting) with batched training. Fine-tuning and parameter-efficient methods live in :mod:`mirkit.tune`."""
