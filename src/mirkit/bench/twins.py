"""Pretrained encoder against its random-init twin, task by task: does pretraining help?

For every encoder ``E`` of a bench whose twin ``random:E`` ran too, each side is represented on a task
by its job (a single layer or the learned weighted sum) with the best mean *validation* headline; the
test headlines of the two are compared over seeds. A task counts as a win (or a loss) only when the
two seed ranges do not overlap (every seed of one side above every seed of the other); otherwise it
is a tie. This is the criterion of issue #18 ("beats its random-init twin on at least 4 of 6 tasks
with non-overlapping seed ranges").
"""

from __future__ import annotations

from dataclasses import dataclass

from mirkit.bench.collect import Row
from mirkit.bench.render import Table


@dataclass(frozen=True)
class TwinComparison:
    """One task of one encoder against its twin (test headline: mean and (min, max) over seeds)."""

    encoder: str
    task: str
    pretrained: Row
    twin: Row

    @property
    def verdict(self) -> str:
        """``pretrained``, ``twin`` or ``overlap``: which side wins with non-overlapping seed ranges."""
        (p_lo, p_hi), (t_lo, t_hi) = self.pretrained_range, self.twin_range
        if p_lo > t_hi:
            return "pretrained"
        if t_lo > p_hi:
            return "twin"
        return "overlap"

    @property
    def pretrained_range(self) -> tuple[float, float]:
        return _range(self.pretrained)

    @property
    def twin_range(self) -> tuple[float, float]:
        return _range(self.twin)


def _range(row: Row) -> tuple[float, float]:
    mean = row.headline[0]
    return row.test_range.get("headline", (mean, mean))


def validated_choice(rows: list[Row], task: str, name: str) -> Row | None:
    """``name``'s job on ``task`` (a layer or the weighted sum) with the best mean validation headline."""
    candidates = [r for r in rows if r.task == task and r.name == name and r.group != "peer"]
    return max(candidates, key=lambda r: r.valid_headline) if candidates else None


def twin_comparisons(rows: list[Row], tasks: list[str]) -> list[TwinComparison]:
    """Every (encoder, task) where both the encoder and its ``random:`` twin have results."""
    names = sorted({r.name for r in rows if r.group != "peer" and not r.name.startswith("random:")})
    out = []
    for name in names:
        for task in tasks:
            pretrained, twin = validated_choice(rows, task, name), validated_choice(rows, task, f"random:{name}")
            if pretrained is not None and twin is not None:
                out.append(TwinComparison(encoder=name, task=task, pretrained=pretrained, twin=twin))
    return out


def twin_blocks(rows: list[Row], tasks: list[str]) -> list[tuple[str, object]]:
    """Report blocks: a table per bench and one summary line per encoder; nothing when no twin ran."""
    comparisons = twin_comparisons(rows, tasks)
    if not comparisons:
        return []

    def cell(row: Row) -> str:
        lo, hi = _range(row)
        return f"{row.headline[0]:.3f} [{lo:.3f}, {hi:.3f}] ({row.layer_label})"

    table = Table(["encoder", "task", "pretrained: test mean [min, max] (job)", "random-init twin", "difference",
                   "ranges apart?"],
                  [[c.encoder, c.task, cell(c.pretrained), cell(c.twin),
                    f"{c.pretrained.headline[0] - c.twin.headline[0]:+.3f}",
                    {"pretrained": "yes: pretrained better", "twin": "yes: twin better", "overlap": "no"}[c.verdict]]
                   for c in comparisons])
    lines = []
    for name in sorted({c.encoder for c in comparisons}):
        mine = [c for c in comparisons if c.encoder == name]
        wins = [c.task for c in mine if c.verdict == "pretrained"]
        losses = [c.task for c in mine if c.verdict == "twin"]
        lines.append(f"{name} beats its random-init twin on {len(wins)} of {len(mine)} tasks with non-overlapping "
                     f"seed ranges ({', '.join(wins) or 'none'}); the twin wins {len(losses)} "
                     f"({', '.join(losses) or 'none'}); the rest overlap.")
    intro = ("Each side is its job (best layer or weighted sum) with the best mean validation score; the test "
             "split is only reported. A task counts only when the two seed ranges do not overlap.")
    return [("h2", "Pretrained vs random-init twin"), ("p", intro), ("table", table), *[("p", line) for line in lines]]
