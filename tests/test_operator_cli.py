"""The operator's commands against a running worker: submit --follow, report and status."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import time
from pathlib import Path
from typing import Iterator

import orjson
import pytest

from streams.local.stack import tierline_argv
from streams.settings import Settings
from streams.local.workload import PROVIDERS, make_items
from tests.support import Workers, follow, publish_items, slow_emulator_workers, wait_for_log


def tierline(settings: Settings, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "TIERLINE_BROKER": settings.broker, "TIERLINE_TOPIC_PREFIX": settings.topic_prefix}
    return subprocess.run(tierline_argv(*args), env=env, capture_output=True, text=True, timeout=timeout)


def jsonl(path: Path, items: list[dict], *extra: bytes) -> Path:
    path.write_bytes(b"\n".join([*(orjson.dumps(item) for item in items), *extra]) + b"\n")
    return path


@pytest.fixture(scope="module")
def followed(start_worker, tmp_path_factory):  # type: ignore[no-untyped-def]
    """One run of ``submit --follow``: good, flaky and errored items and a line without a model."""
    settings = start_worker()
    items = make_items(16, "follow", flaky=2, errored=1)
    no_model = orjson.dumps({"custom_id": "follow-no-model", "provider": "anthropic",
                             "params": {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}})
    path = jsonl(tmp_path_factory.mktemp("follow") / "items.jsonl", items, no_model)
    done = tierline(settings, "submit", str(path), "--allow-invalid", "--follow", "--timeout", "200")
    return settings, items, done


def test_submit_follow_shows_progress_until_every_item_ended_and_fails_if_some_did_not_succeed(followed) -> None:  # type: ignore[no-untyped-def]
    settings, items, done = followed
    assert done.returncode == 1, done.stderr  # one errored item and one dead letter
    *progress, summary = done.stdout.splitlines()
    # Not a terminal: plain lines, the last with every item ended.
    assert progress and all("ended" in line and "\r" not in line for line in progress)
    assert progress[-1].startswith("17/17 ended")
    assert summary.startswith("15 succeeded (2 after a retry), 1 failed for good, 1 dead-lettered, 0 skipped")
    assert "saved against realtime" in summary
    assert "published 17 item(s)" in done.stderr


def test_submitting_items_that_already_succeeded_skips_them_and_exits_0(followed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, items, _ = followed
    good = items[3:]  # neither flaky nor errored: all succeeded
    done = tierline(settings, "submit", str(jsonl(tmp_path / "again.jsonl", good)), "--follow", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    assert f"0 succeeded (0 after a retry), 0 failed for good, 0 dead-lettered, {len(good)} skipped" in done.stdout


def test_on_a_terminal_follow_redraws_one_line_with_a_bar(followed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, _, _ = followed
    path = jsonl(tmp_path / "tty.jsonl", make_items(4, "tty"))
    primary, secondary = pty.openpty()
    env = {**os.environ, "TIERLINE_BROKER": settings.broker, "TIERLINE_TOPIC_PREFIX": settings.topic_prefix}
    proc = subprocess.Popen(tierline_argv("submit", str(path), "--follow", "--timeout", "200"), env=env,
                            stdout=secondary, stderr=subprocess.DEVNULL)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert proc.wait(30) == 0
    text = shown.decode()
    assert "\r\x1b[K[" in text  # redrawn in place
    assert "[########################] 4/4 ended" in text and "4 succeeded" in text


def test_report_adds_up_the_cost_of_each_result_once(followed) -> None:  # type: ignore[no-untyped-def]
    settings, items, _ = followed
    ids = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended()))
    # Every result on the topic (other tests of the module add theirs), each counted once.
    results = {(doc["custom_id"], doc["batch_id"]): doc for docs in progress.results.values() for doc in docs}
    assert len({cid for cid, _ in results} & ids) == 15
    assert all(r["tier"] == "batch" and r["cost_usd"] > 0 for r in results.values())

    done = tierline(settings, "report", "--json")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    total = report["total"]
    assert total["items"] == len(results)
    assert total["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in results.values()), abs=1e-5)
    assert total["realtime_usd"] == pytest.approx(sum(r["realtime_usd"] for r in results.values()), abs=1e-5)
    assert total["saved_share"] == pytest.approx(0.5, abs=1e-3)
    assert {(g["tier"], g["provider"]) for g in report["groups"]} == {("batch", p) for p in PROVIDERS}
    assert sum(g["items"] for g in report["groups"]) == len(results)

    table = tierline(settings, "report")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[1].split()[:3] == ["tier", "provider", "model"]
    assert "saved $" in table.stdout and "(50.0%)" in table.stdout

    per_n = tierline(settings, "report", "--by", "metadata.n", "--json")  # the items' metadata: {"n": i}
    assert per_n.returncode == 0, per_n.stderr
    groups = orjson.loads(per_n.stdout)["groups"]
    assert sum(g["items"] for g in groups) == len(results) and {"0", "1"} <= {g["metadata.n"] for g in groups}
    wrong = tierline(settings, "report", "--by", "team")
    assert wrong.returncode == 2 and "metadata.KEY" in wrong.stderr


@pytest.fixture(scope="module")
def slow_workers(broker_port: int, s3_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    """Batches take 30 s: long enough to look at them in flight."""
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, batch_seconds=30) as pool:
        yield pool


def test_status_shows_each_batch_in_flight_with_its_provider_status_and_time_left(slow_workers: Workers) -> None:
    env = slow_workers.env()
    worker = slow_workers.start(env)
    settings = Settings.from_env(env)
    items = make_items(8, "status", providers=("anthropic",))
    publish_items(settings, items)
    [submitted] = wait_for_log(worker, "batch_submitted")
    found = polled(settings)
    [row] = found["batches"]
    assert row["batch_id"] == submitted["batch_id"] and row["provider"] == "anthropic"
    assert row["items"] == 8 and row["state"] == "submitted" and row["provider_status"] == "in_progress"
    assert 0 < row["left_s"] <= 24 * 3600 and row["age_s"] >= 0 and row["alert"] is None

    table = tierline(settings, "status")
    assert table.returncode == 0, table.stderr
    head, line, *rest = table.stdout.splitlines()
    assert head.split()[:3] == ["batch", "provider", "model"] and "provider status" not in head
    assert line.startswith(submitted["batch_id"]) and "submitted" in line
    assert max(map(len, table.stdout.splitlines())) <= 120
    assert rest[-1].startswith("1 batch(es) in flight")
    wide = tierline(settings, "status", "--wide")  # the provider's own status too
    assert "provider status" in wide.stdout.splitlines()[0] and "in_progress" in wide.stdout.splitlines()[1]


def polled(settings: Settings, timeout: float = 60) -> dict:
    """``tierline status --json`` once the provider's status of every batch is known."""
    deadline = time.monotonic() + timeout
    while True:
        done = tierline(settings, "status", "--json")
        assert done.returncode == 0, done.stderr
        found = orjson.loads(done.stdout)
        if found["batches"] and all(row["provider_status"] for row in found["batches"]):
            return found
        assert time.monotonic() < deadline, f"no provider status came: {found}"
        time.sleep(0.5)


@pytest.mark.integration  # starts a tierline process
def test_tierline_starts_its_processes_whatever_folders_the_current_directory_holds(tmp_path: Path) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "__init__.py").write_text("raise ImportError('the user own core package')\n")
    done = subprocess.run(tierline_argv("--version"), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    # Without -P the folder above would be imported for tierline's own core package, and fail.
    assert done.returncode == 0 and done.stdout.strip().endswith("0.1.0")
