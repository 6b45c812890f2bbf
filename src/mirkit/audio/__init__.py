"""Audio input: decode, mix down, resample, check, and cut long files into windows.

Importing this package does not import torch.
"""

from mirkit.audio.checks import check_waveform
from mirkit.audio.io import (
    AUDIO_EXTENSIONS,
    ChannelPolicy,
    is_audio_path,
    load,
    read_info,
)
from mirkit.audio.resample import resample
from mirkit.audio.stream import Window, iter_windows

__all__ = [
    "AUDIO_EXTENSIONS",
    "ChannelPolicy",
    "Window",
    "check_waveform",
    "is_audio_path",
    "iter_windows",
    "load",
    "read_info",
    "resample",
]
