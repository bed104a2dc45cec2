"""The benchmarks' figures kept run by run, and drawn as the docs show them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.charts import draw
from bench.results import RESULTS, load, save

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"


def test_a_run_is_kept_with_what_and_where_it_ran_and_read_back(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv("TIERLINE_BENCH_RESULTS", str(results))
    save("pipeline", {"ratio": 0.40123456, "items_per_s": 29031}, workers=2, items=100_000)
    save("intake", {"placed_us": 10.0})
    results.write_bytes(results.read_bytes() + b"not json\n\n")
    runs = load(results)
    assert [run.bench for run in runs] == ["pipeline", "intake"]
    assert runs[0].figures == {"ratio": 0.4012, "items_per_s": 29031.0}
    assert runs[0].series == "pipeline items=100000 workers=2" and runs[0].cores > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", runs[0].at)


def test_nothing_is_kept_when_told_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERLINE_BENCH_RESULTS", "")
    before = RESULTS.read_bytes() if RESULTS.exists() else b""
    save("intake", {"placed_us": 1.0})
    assert (RESULTS.read_bytes() if RESULTS.exists() else b"") == before


def test_each_benchmark_is_a_chart_of_its_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv("TIERLINE_BENCH_RESULTS", str(results))
    for ratio in (0.37, 0.40):
        save("pipeline", {"ratio": ratio, "items_per_s": 29_000}, workers=2)
    save("pipeline", {"ratio": 0.28}, workers=1)
    save("memory", {"peak_mb": 139})
    charts = draw(load(results), tmp_path / "charts")
    assert [path.name for path in charts] == ["memory.png", "pipeline.png"]
    assert all(path.read_bytes().startswith(PNG) and path.stat().st_size > 5_000 for path in charts)


def test_the_speed_page_shows_a_chart_for_every_benchmark_kept() -> None:
    speed = (ROOT / "docs" / "speed.md").read_text()
    for bench in sorted({run.bench for run in load(RESULTS)}):
        assert f"](img/bench/{bench}.png)" in speed, bench
        assert (ROOT / "docs" / "img" / "bench" / f"{bench}.png").read_bytes().startswith(PNG), bench
