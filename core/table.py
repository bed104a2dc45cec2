"""Plain-text tables for the CLI: columns as wide as their widest cell; pure."""

from __future__ import annotations

from typing import Sequence

__all__ = ["text_table"]


def text_table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int | None = None) -> list[str]:
    """Lines of a table. The first ``left`` columns are aligned left, the rest right (figures); all left if None."""
    every = [tuple(head), *(tuple(row) for row in rows)]
    widths = [max(len(row[i]) for row in every) for i in range(len(head))]
    left = len(head) if left is None else left

    def line(row: tuple[str, ...]) -> str:
        cells = (v.ljust(w) if i < left else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True)))
        return "  ".join(cells).rstrip()

    return [line(row) for row in every]
