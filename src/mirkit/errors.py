"""Every error mirkit raises, in one hierarchy.

Messages answer four questions: what failed (the file or item), the offending value, what was
expected, and how to fix it.
"""

from __future__ import annotations


class MirkitError(Exception):
    """Base class of all mirkit errors."""


class UnknownNameError(MirkitError, KeyError):
    """A registry lookup used a name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(MirkitError, ValueError):
    """An argument or configuration value is out of range or inconsistent."""


class AudioError(MirkitError):
    """Base class of errors about one audio input; ``reason`` is a short machine-readable tag."""

    reason = "audio_error"


class AudioDecodeError(AudioError, OSError):
    """The file could not be opened or decoded (missing, empty, truncated, not audio)."""

    reason = "decode_error"


class InvalidAudioError(AudioError, ValueError):
    """The decoded signal is unusable (empty, non-finite samples)."""

    reason = "invalid_audio"

    def __init__(self, message: str, *, reason: str = "invalid_audio") -> None:
        super().__init__(message)
        self.reason = reason


class AudioTooShortError(InvalidAudioError):
    """The signal is shorter than the encoder's minimum input length."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="too_short")


class SampleRateError(AudioError, ValueError):
    """A waveform was passed at a sample rate the consumer cannot use."""

    reason = "sample_rate"


class WeightsNotFoundError(MirkitError, FileNotFoundError):
    """An encoder's weights are neither installed nor in the given directory."""


class CheckpointError(MirkitError, ValueError):
    """A checkpoint file is malformed or does not match the expected layout."""


class StoreError(MirkitError):
    """The feature store is inconsistent or an item is corrupt."""


class TrainingError(MirkitError, RuntimeError):
    """Training cannot go on (repeated non-finite losses, out of memory, ...)."""
