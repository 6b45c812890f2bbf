"""A bench folder as one task x encoder markdown matrix (for README and results pages).

Each cell is the encoder's job (a layer or the weighted sum) with the best mean *validation* headline,
shown as test mean +- std over seeds; peers are single runs. The best cell of each task is bold.

    python scripts/bench_matrix.py runs/bench-standard [--encoders a,b,...] [--tasks key,tempo,...]
    python scripts/bench_matrix.py runs/bench-quick --best     # per task: the validated best encoder vs the best peer
"""

from __future__ import annotations

import argparse

from mirkit.bench.collect import collect, derived_rows
from mirkit.bench.twins import validated_choice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs")
    parser.add_argument("--encoders", default=None, help="comma list and column order (default: all, by name)")
    parser.add_argument("--tasks", default=None, help="comma list and row order (default: the bench's tasks)")
    parser.add_argument("--best", action="store_true", help="one row per task: the encoder row with the best "
                        "validation headline (every encoder, every job, as the report chooses) and the best peer")
    args = parser.parse_args()
    rows, context = collect(args.runs)
    tasks = args.tasks.split(",") if args.tasks else [t for t in context["plan"]["tasks"] if any(r.task == t for r in rows)]
    if args.best:
        print_best(rows, tasks)
        return
    names = args.encoders.split(",") if args.encoders else sorted({r.name for r in rows})
    print("| task | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for task in tasks:
        cells = {}
        for name in names:
            peer = [r for r in rows if r.task == task and r.name == name and r.group == "peer"]
            row = peer[0] if peer else validated_choice(rows, task, name)
            cells[name] = row
        best = max((r.headline[0] for r in cells.values() if r is not None), default=None)
        out = []
        for name in names:
            r = cells[name]
            if r is None:
                out.append("-")
                continue
            text = f"{r.headline[0]:.3f}" if r.seeds < 2 else f"{r.headline[0]:.3f} +- {r.headline[1]:.3f}"
            out.append(f"**{text}**" if r.headline[0] == best else text)
        print(f"| {task} | " + " | ".join(out) + " |")


def print_best(rows, tasks: list[str]) -> None:
    """Per task the encoder row chosen on validation (its test mean and seed count) and the best peer on test."""
    print("| task | best encoder (chosen on validation) | test | best installed peer | test |")
    print("|---|---|---:|---|---:|")
    for task in tasks:
        mine = [r for r in rows if r.task == task and r.group != "peer"] + derived_rows(rows, task)  # beat-probe tempo
        peers = [r for r in rows if r.task == task and r.group == "peer"]
        chosen = max(mine, key=lambda r: r.valid_headline) if mine else None
        peer = max(peers, key=lambda r: r.headline[0]) if peers else None
        how = f" ({chosen.group.split(', ', 1)[1]})" if chosen and ", " in chosen.group else ""
        cells = [f"{chosen.name}{how}, {chosen.layer_label}" if chosen else "-",
                 f"{chosen.headline[0]:.3f}" if chosen else "-", peer.name if peer else "-",
                 f"{peer.headline[0]:.3f}" if peer else "-"]
        print(f"| {task} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
