"""``separation``: the stems of a mix (drums, bass, other), scored by SDR in dB.

Conventions: a clip's label maps each stem name of the task's vocabulary to an audio file beside the
manifest; the mix is their sum. Trained and scored by the booster (``mirkit boost --model
open-unmix``), never by probes. Headline: ``sdr``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mirkit.kinds.base import StemsKind, register_kind


class SeparationKind(StemsKind):
    def check_label(self, value: object, *, labels: dict[str, object], vocabulary: Sequence[str], folder: Path,
                    duration_s: float) -> str | None:
        if not isinstance(value, dict) or sorted(value) != sorted(vocabulary):
            return f"stems {value!r}: expected a path for each of {list(vocabulary)}"
        missing = [stem for stem, path in value.items() if not (folder / str(path)).is_file()]
        return f"stem file(s) of {missing} missing" if missing else None


SEPARATION = register_kind(SeparationKind(name="separation", headline="sdr", min_frame_rate_hz=20.0,
                                          description="stems of a mix (SDR; the booster's open-unmix)"))

__all__ = ["SEPARATION", "SeparationKind"]
