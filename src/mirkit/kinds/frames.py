"""Helpers shared by the frame-level kinds: events widened onto a frame grid."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: target of the two frames beside an event's frame (so a frame-rate rounding is not punished as a miss)
NEIGHBOUR_WEIGHT = 0.5


def widened(times_s: np.ndarray, events_s: Iterable[float], rate_hz: float) -> np.ndarray:
    """``(frames,)`` targets: 1 at the frame nearest each event, :data:`NEIGHBOUR_WEIGHT` at its two
    neighbours; an event more than one frame away from every frame is left out."""
    target = np.zeros(len(times_s), dtype=np.float32)
    for event in events_s:
        nearest = int(np.argmin(np.abs(times_s - event)))
        if abs(times_s[nearest] - event) > 1.0 / rate_hz:
            continue  # the event falls where the clip has no frame
        for neighbour in (nearest - 1, nearest + 1):
            if 0 <= neighbour < len(target):
                target[neighbour] = max(target[neighbour], NEIGHBOUR_WEIGHT)
        target[nearest] = 1.0
    return target


def times_problem(times: object, *, name: str, duration_s: float, strictly: bool = True) -> str | None:
    """What is wrong with a list of event times in seconds inside a clip (``None``: nothing)."""
    if not isinstance(times, list):
        return f"{name} are missing (expected a list of times in seconds)"
    if any((b <= a) if strictly else (b < a) for a, b in zip(times, times[1:])):
        return f"{name} times are not {'strictly ' if strictly else ''}increasing"
    if times and (times[0] < 0 or times[-1] > duration_s + 1e-3):
        return f"{name} run from {times[0]} to {times[-1]} s, outside the {duration_s:.3f} s clip"
    return None


__all__ = ["NEIGHBOUR_WEIGHT", "times_problem", "widened"]
