"""One row per measured figure, printed as one table and written as JSON by `make bench`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    """A ratio or count measured in this run; `met` says whether it reaches its target (None: no target)."""

    benchmark: str
    figure: str
    value: float | int
    target: str = ""
    met: bool | None = None


def format_table(figures: list[Figure]) -> str:
    """A Markdown table, so the README can show it as printed."""
    rows = [("benchmark", "figure", "value", "target", "met")]
    rows += [(f.benchmark, f.figure, f"{f.value:g}" if isinstance(f.value, float) else str(f.value), f.target,
              "" if f.met is None else ("yes" if f.met else "NO")) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def print_table(figures: list[Figure]) -> None:
    print(format_table(figures), flush=True)


def write_json(figures: list[Figure], path: Path, machine: dict) -> None:
    path.write_text(json.dumps({"machine": machine, "figures": [asdict(f) for f in figures]}, indent=2) + "\n")
