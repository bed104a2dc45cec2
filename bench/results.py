"""Each benchmark's figures, kept: one JSON line per run in ``bench/results.jsonl`` (``bench.charts`` draws them).

A line says which benchmark, with what (``params``: the items, the workers), on what (the commit, the cores),
when, and its figures, each a number with its unit in its name (``ratio``, ``placed_us``, ``peak_mb``). Runs of
the same benchmark and params are one series in the charts. ``TIERLINE_BENCH_RESULTS`` writes elsewhere (the
tests do); empty, nowhere.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Run", "RESULTS", "save", "load"]

RESULTS = Path(__file__).resolve().parent / "results.jsonl"


@dataclass(frozen=True, slots=True)
class Run:
    bench: str
    at: str  # UTC, ISO 8601
    figures: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)
    commit: str = ""
    cores: int = 0

    @property
    def series(self) -> str:
        """The benchmark and its params, as a chart's legend names it."""
        return self.bench + "".join(f" {name}={value}" for name, value in sorted(self.params.items()))


def _commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=RESULTS.parent)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def save(bench: str, figures: dict[str, float], **params: Any) -> Run:
    """Append this run's figures to the results file, and say where."""
    run = Run(bench, datetime.now(timezone.utc).isoformat(timespec="seconds"),
              {name: round(float(value), 4) for name, value in figures.items()}, params, _commit(),
              os.cpu_count() or 0)
    target = os.environ.get("TIERLINE_BENCH_RESULTS", str(RESULTS))
    if target:
        with open(target, "ab") as out:
            out.write(orjson.dumps(run) + b"\n")
        print(f"figures kept in {target} (python -m bench.charts draws them)")
    return run


def load(path: Path = RESULTS) -> list[Run]:
    """Every run in the results file, oldest first; a line that cannot be read is said and skipped."""
    runs: list[Run] = []
    if not path.exists():
        return runs
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            runs.append(Run(**orjson.loads(line)))
        except (orjson.JSONDecodeError, TypeError) as exc:
            print(f"{path}:{number}: skipped, not a run ({exc})")
    return sorted(runs, key=lambda run: run.at)
