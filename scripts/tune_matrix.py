"""A `scripts/tune_table.sh` folder as one method x task markdown matrix (for README and results pages).

Each cell is the test headline of the (task, encoder, method) run, mean [min, max] over its finished
seeds (the seed range is what a claim of one method beating another needs); ``-``: not finished.
The from-scratch CNN is the ``scratch`` row. JSON line last (every seed's test headline).

    python scripts/tune_matrix.py runs/petl-quick --encoder mirkit-mel-small [--tasks key,tempo,...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

METHODS = ("probe", "finetune", "adapter", "prompt", "lora", "dora", "ia3", "bitfit", "scratch")


def seeds_of(folder: Path) -> list[float]:
    """Every finished seed's test headline of a tune run folder ([] while the run is not finished)."""
    if not (folder / "summary.json").is_file():
        return []
    return [json.loads(p.read_text())["test"]["headline"] for p in sorted((folder / "results").glob("*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs")
    parser.add_argument("--encoder", required=True, help="the encoder of the table (names the run folders)")
    parser.add_argument("--tasks", default="key,tempo,tagging,instrument", help="comma list and column order")
    args = parser.parse_args()
    runs, tasks, encoder = Path(args.runs), args.tasks.split(","), args.encoder.replace(":", "_")
    table: dict[str, dict[str, list[float]]] = {}
    for method in METHODS:
        folders = {t: runs / (f"{t}-scratch" if method == "scratch" else f"{t}-{encoder}-{method}") for t in tasks}
        if not any(f.is_dir() for f in folders.values()):
            continue
        table[method] = {t: seeds_of(f) for t, f in folders.items()}
    print("| method | " + " | ".join(tasks) + " |")
    print("|---|" + "---|" * len(tasks))
    for method, cells in table.items():
        row = [f"{np.mean(v):.3f} [{min(v):.3f}, {max(v):.3f}]" if v else "-" for v in cells.values()]
        print(f"| {method} | " + " | ".join(row) + " |")
    print(json.dumps({"script": "tune_matrix", "runs": str(runs), "encoder": args.encoder, "seeds": table}))


if __name__ == "__main__":
    main()
