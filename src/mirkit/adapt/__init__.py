"""Adaptation of encoders to tasks: probes on cached features (fine-tuning and PEFT come later)."""
