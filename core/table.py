"""Plain-text tables for the CLI: columns as wide as their widest cell; pure."""

from __future__ import annotations

from typing import Sequence

__all__ = ["fit", "text_table"]


def text_table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int | None = None) -> list[str]:
    """Lines of a table. The first ``left`` columns are aligned left, the rest right (figures); all left if None."""
    every = [tuple(head), *(tuple(row) for row in rows)]
    widths = [max(len(row[i]) for row in every) for i in range(len(head))]
    left = len(head) if left is None else left

    def line(row: tuple[str, ...]) -> str:
        cells = (v.ljust(w) if i < left else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True)))
        return "  ".join(cells).rstrip()

    return [line(row) for row in every]


def fit(head: Sequence[str], rows: Sequence[Sequence[str]], width: int, shrinkable: dict[int, int]) -> list[list[str]]:
    """``rows`` whose table (``text_table``) is at most ``width`` characters wide, where it can be: the widest of the
    ``shrinkable`` columns (index → narrowest it may get) is cut by a character at a time, each cell cut keeping
    its end (ids and names differ there) behind a "…"."""
    every = [list(head), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in every) for i in range(len(head))]
    while sum(widths) + 2 * (len(widths) - 1) > width:
        cuttable = [i for i, least in shrinkable.items() if widths[i] > least]
        if not cuttable:
            break
        widths[max(cuttable, key=lambda i: widths[i])] -= 1
    return [[_cut(cell, widths[i]) if i in shrinkable else cell for i, cell in enumerate(row)] for row in rows]


def _cut(cell: str, width: int) -> str:
    return cell if len(cell) <= width else "…" + cell[len(cell) - width + 1:]
