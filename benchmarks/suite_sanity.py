"""Label sanity of a built suite: independent estimators vs the labels. JSON line last.

    python benchmarks/suite_sanity.py SUITE_DIR [--pitch-every 4]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mirkit.data.sanity import key_agreement, pitch_agreement, tempo_agreement


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("suite")
    parser.add_argument("--pitch-every", type=int, default=4)
    args = parser.parse_args()
    root = Path(args.suite)
    result = {"benchmark": "suite_sanity", "suite": str(root)}
    result["key_progressions"] = round(key_agreement(root / "key", source="generated:progression"), 3)
    result["key_chorales"] = round(key_agreement(root / "key", source="music21:bach-chorale"), 3)
    result["key_folksongs"] = round(key_agreement(root / "key", source="music21:essen-folksong"), 3)
    print(f"key: progressions {result['key_progressions']}, chorales {result['key_chorales']}, "
          f"folk songs {result['key_folksongs']} (chance 0.042)", flush=True)
    for name, prefix in (("templates", "generated:groove"), ("mma", "mma:")):
        acc1, acc2 = tempo_agreement(root / "tempo", source_prefix=prefix)
        result[f"tempo_{name}_acc1"], result[f"tempo_{name}_acc2"] = round(acc1, 3), round(acc2, 3)
        print(f"tempo ({name}): Acc1 {acc1:.3f}, Acc2 {acc2:.3f}", flush=True)
    result["pitch_exact"], result["pitch_class"] = (round(v, 3) for v in pitch_agreement(root / "pitch", every=args.pitch_every))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
