"""Charts of the benchmarks' kept figures (``bench/results.jsonl``), for the docs: ``python -m bench.charts``.

One PNG a benchmark in ``docs/img/bench/``, a panel a figure, each run a point in time, runs of the same params
one line, a target as a dashed line where the benchmark has one. ``make charts`` runs it.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from datetime import datetime
from itertools import cycle
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.dates as mdates  # noqa: E402 - after the backend is chosen
import matplotlib.pyplot as plt  # noqa: E402

from bench.results import RESULTS, Run, load  # noqa: E402

__all__ = ["draw", "TARGETS", "CHARTS"]

CHARTS = Path(__file__).resolve().parent.parent / "docs" / "img" / "bench"

#: (benchmark, figure) → the target the docs hold it to.
TARGETS = {("pipeline", "ratio"): 0.35, ("memory", "peak_mb"): 150.0, ("replay", "replay_ratio"): 0.7,
           ("in_flight", "cpu_percent"): 5.0}


def draw(runs: list[Run], folder: Path = CHARTS) -> list[Path]:
    """A chart per benchmark in ``runs``; the files written."""
    by_bench: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_bench[run.bench].append(run)
    folder.mkdir(parents=True, exist_ok=True)
    return [_chart(bench, bench_runs, folder / f"{bench}.png") for bench, bench_runs in sorted(by_bench.items())]


#: Past this many series a chart has one legend, below its panels (this many inches), rather than one on each panel.
LEGEND_IN_PANEL = 4
LEGEND_IN = 1.5


def _chart(bench: str, runs: list[Run], path: Path) -> Path:
    figures = sorted({name for run in runs for name in run.figures})
    below = len({run.series for run in runs}) > LEGEND_IN_PANEL
    fig, axes = plt.subplots(len(figures), 1, figsize=(7, 2.2 * len(figures) + (LEGEND_IN if below else 0)),
                             sharex=True, squeeze=False)
    for ax, figure in zip(axes[:, 0], figures, strict=True):
        series: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
        for run in runs:
            if figure in run.figures:
                series[run.series].append((datetime.fromisoformat(run.at), run.figures[figure]))
        colours = cycle(plt.get_cmap("tab20").colors if below else [None])  # type: ignore[attr-defined]
        for colour, (name, points) in zip(colours, sorted(series.items()), strict=False):  # the colours go round
            ax.plot([at for at, _ in points], [value for _, value in points], marker="o", label=name, color=colour)
        if (target := TARGETS.get((bench, figure))) is not None:
            ax.axhline(target, linestyle="--", color="grey", label=f"target {target:g}")
        ax.set_ylabel(figure)
        ax.grid(alpha=0.3)
        if not below:
            ax.legend(fontsize="x-small", loc="best")
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    axes[-1, 0].xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]  # minutes apart or months
    axes[-1, 0].xaxis.set_major_formatter(formatter)
    fig.suptitle(f"bench.{bench}: {len(runs)} run{'s' if len(runs) != 1 else ''}, "
                 f"the last on {runs[-1].at[:10]} at {runs[-1].commit or 'an unknown commit'}")
    if below:
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, [label.removeprefix(f"{bench} ") for label in labels], loc="lower center", ncol=2,
                   fontsize="x-small")
        fig.tight_layout(rect=(0, LEGEND_IN / fig.get_figheight(), 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.charts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"the runs (default {RESULTS.name})")
    parser.add_argument("--to", type=Path, default=CHARTS, help="the folder of the charts (default docs/img/bench)")
    args = parser.parse_args()
    runs = load(args.results)
    if not runs:
        raise SystemExit(f"no runs in {args.results}: run a benchmark first (make bench)")
    for path in draw(runs, args.to):
        print(path)


if __name__ == "__main__":
    main()
