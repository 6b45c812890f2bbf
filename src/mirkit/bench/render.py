"""Report rendering shared by the benchmark report and the transfer-methods report.

A report is a list of blocks ``(kind, payload)``: ``("h1"|"h2"|"p", text)``, ``("table", Table)``
or ``("img", path to a PNG)``. :func:`write_documents` writes them as ``report.md`` and a
self-contained ``report.html`` (figures embedded), atomically.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path

from mirkit.files import atomic_write_text

Block = tuple[str, object]


@dataclass
class Table:
    """A table of already formatted cells."""

    header: list[str]
    rows: list[list[str]]


def format_mean_std(value: tuple[float, float] | None, seeds: int) -> str:
    """``mean +- std`` with three decimals (the mean alone for one seed; ``-`` when missing)."""
    if value is None or math.isnan(value[0]):
        return "-"
    return f"{value[0]:.3f}" if seeds < 2 else f"{value[0]:.3f} +- {value[1]:.3f}"


def to_markdown(blocks: list[Block], root: Path) -> str:
    """Markdown of ``blocks``; figures are linked relative to ``root`` (the report's folder)."""
    out = []
    for kind, payload in blocks:
        if kind == "h1":
            out.append(f"# {payload}\n")
        elif kind == "h2":
            out.append(f"\n## {payload}\n")
        elif kind == "p":
            out.append(f"{payload}\n")
        elif kind == "img":
            path = Path(payload)  # type: ignore[arg-type]
            out.append(f"![{path.stem}]({path.relative_to(root).as_posix()})\n")
        else:
            table: Table = payload  # type: ignore[assignment]
            out.append("| " + " | ".join(table.header) + " |")
            out.append("|" + "---|" * len(table.header))
            out += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in table.rows]
            out.append("")
    return "\n".join(out) + "\n"


def to_html(blocks: list[Block]) -> str:
    """One self-contained HTML page of ``blocks`` (figures embedded as base64 PNG)."""
    body = []
    for kind, payload in blocks:
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(str(payload))}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{html.escape(str(payload))}</p>")
        elif kind == "img":
            data = base64.b64encode(Path(payload).read_bytes()).decode()  # type: ignore[arg-type]
            body.append(f'<img alt="{html.escape(Path(payload).stem)}" src="data:image/png;base64,{data}">')  # type: ignore[arg-type]
        else:
            table: Table = payload  # type: ignore[assignment]
            head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px}"
             "th{background:#eee}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>mirkit benchmark report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def write_documents(blocks: list[Block], root: Path) -> tuple[Path, Path]:
    """``root/report.md`` and ``root/report.html`` from ``blocks``; returns both paths."""
    md_path, html_path = root / "report.md", root / "report.html"
    atomic_write_text(md_path, to_markdown(blocks, root))
    atomic_write_text(html_path, to_html(blocks))
    return md_path, html_path
