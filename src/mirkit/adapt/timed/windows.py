"""Windows that cover a whole clip, for models evaluated on fixed-length inputs (tune, boost)."""

from __future__ import annotations


def covering_windows(length: int, *, window_samples: int, hop_samples: float = 1.0) -> list[int]:
    """First samples of consecutive windows that cover a clip of ``length`` samples: back to back, the
    last one moved back to end with the clip (overlapping its neighbour, its start kept on the frame
    grid of ``hop_samples`` so its frames fall on its neighbours' times) so that no tail is lost."""
    if length <= window_samples:
        return [0]
    starts = list(range(0, length - window_samples + 1, window_samples))
    if starts[-1] + window_samples < length:
        hop = max(1.0, hop_samples)
        starts.append(int(int((length - window_samples) / hop) * hop))
    return sorted(set(starts))


__all__ = ["covering_windows"]
