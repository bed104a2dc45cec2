"""The broker goes away under a running worker and comes back: on the durable single node
(``tierline broker --data``), Tansu is killed (SIGKILL) while batches are open and in flight at the
provider, and started again on the same port after a while.

The worker must neither crash nor hang: ``/readyz`` says not ready while the broker is away and ready
once it is back, every item ends with exactly one result, and none is submitted in two batches.
``tierline submit --follow`` says the broker went away and came back, and ends as it would have;
with no broker at all it says it waits, and exits 4 once the wait is over.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import orjson
import pytest

from streams.local.stack import free_port, tierline_argv, wait_for_port
from streams.local.workload import make_items
from streams.settings import Settings
from streams.cli.produce import publish_lines
from tests.support import Workers, follow, slow_emulator_workers, submissions

pytestmark = pytest.mark.integration


class DurableBroker:
    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.folder.parent / "broker-command.log").open("ab") as log:
            self.proc = subprocess.Popen(tierline_argv("broker", "--data", str(self.folder), "--port", str(self.port)),
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, 120, self.proc)

    def kill_tansu(self) -> None:
        """SIGKILL of the broker itself: the command sees it die, stops SeaweedFS cleanly and exits 1."""
        subprocess.run(["pkill", "-KILL", "-f", f"listener-url tcp://127.0.0.1:{self.port}"], check=True)
        assert self.proc is not None and self.proc.wait(60) == 1

    def kill_node(self) -> None:
        """SIGKILL of the whole node at once: the command, Tansu and SeaweedFS, as a host dies."""
        assert self.proc is not None
        children = [int(pid) for pid in orjson.loads((self.folder / "pids.json").read_bytes())["children"]]
        for pid in [self.proc.pid, *children]:
            os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


@pytest.fixture(scope="module")
def durable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DurableBroker]:
    broker = DurableBroker(tmp_path_factory.mktemp("durable") / "kafka")
    broker.start()
    yield broker
    broker.stop()


def readiness(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as not_ready:
        json.loads(not_ready.read())  # it still answers, with what is missing
        return int(not_ready.code)


def until_readiness(port: int, status: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (seen := readiness(port)) != status:
        assert time.monotonic() < deadline, f"/readyz stayed {seen}, not {status}"
        time.sleep(0.5)


def test_a_worker_rides_out_the_broker_dying_and_coming_back(  # type: ignore[no-untyped-def]
        durable: DurableBroker, s3_port: int, tmp_path_factory) -> None:
    with slow_emulator_workers(durable.port, s3_port, tmp_path_factory, 8) as workers:  # batches take 8 s
        pool: Workers = workers
        env = pool.env(TIERLINE_PARTITIONS="4")
        worker = pool.start(env)
        port = worker.web_port  # type: ignore[attr-defined]
        until_readiness(port, 200, 60)
        settings = Settings.from_env(env)
        items = make_items(300, "outage", providers=("anthropic", "openai"))
        work, said = durable.folder.parent / "outage.jsonl", durable.folder.parent / "submit.log"
        work.write_bytes(b"\n".join(orjson.dumps(item) for item in items))
        with said.open("wb") as out:
            submit = subprocess.Popen(tierline_argv("submit", str(work), "--follow", "--kafka-wait", "120"),
                                      env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        until_said(said, "published 300 item(s)", submit)
        time.sleep(3)  # batches open and some at the provider
        durable.kill_tansu()
        until_readiness(port, 503, 30)
        assert worker.poll() is None
        until_said(said, "s for Kafka: nothing answers at", submit)
        durable.start()
        until_readiness(port, 200, 90)
        ids = {item["custom_id"] for item in items}
        progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=180))
        assert worker.poll() is None
        assert max(submissions(pool.emulator_port).values()) == 1  # no custom_id in two batches
        assert submit.wait(60) == 0
    assert set(progress.results) == ids and all(len(events) == 1 for events in progress.results.values())
    assert not progress.failures
    told = said.read_text()
    assert "waiting up to 120 s for Kafka" in told and "Kafka answers again, after" in told
    assert "300 succeeded" in told


@pytest.mark.parametrize("run", range(3))
def test_a_whole_node_crash_with_items_in_flight_loses_nothing_and_runs_nothing_twice(  # type: ignore[no-untyped-def]
        durable: DurableBroker, s3_port: int, tmp_path_factory, run: int) -> None:
    """Tansu and SeaweedFS SIGKILLed with their command, with 300 items in flight (some failing once, some for
    good), started again on the same folder: every item ends once, none is submitted twice but for a retry."""
    with slow_emulator_workers(durable.port, s3_port, tmp_path_factory, 3) as workers:
        pool: Workers = workers
        env = pool.env(TIERLINE_PARTITIONS="4")
        worker = pool.start(env)
        until_readiness(worker.web_port, 200, 60)  # type: ignore[attr-defined]
        settings = Settings.from_env(env)
        items = make_items(300, f"node{run}", flaky=15, errored=5, providers=("anthropic", "openai"))
        asyncio.run(publish_lines(settings, [orjson.dumps(item) for item in items]))
        time.sleep(2 + run)  # batches open, some at the provider, retries on their way: a different moment each run
        durable.kill_node()
        time.sleep(2)
        durable.start()
        ids = {item["custom_id"] for item in items}
        progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=240))
        assert worker.poll() is None
        retried = progress.retried()
        twice = {cid: n for cid, n in submissions(pool.emulator_port).items() if n > 1 and cid not in retried}
    assert ids <= progress.ended(), f"lost: {sorted(ids - progress.ended())}"
    assert twice == {}
    assert {cid for cid, events in progress.results.items() if len({e["batch_id"] for e in events}) > 1} == set()
    assert all(sum(e["final"] for e in events) == 1 for events in progress.failures.values()
               if any(e["final"] for e in events))


def test_submit_with_no_broker_says_it_waits_and_exits_4_when_the_wait_is_over(tmp_path: Path) -> None:
    work = tmp_path / "one.jsonl"
    work.write_bytes(orjson.dumps(make_items(1, "nobody")[0]))
    done = subprocess.run(tierline_argv("submit", str(work), "--kafka-wait", "3"), capture_output=True, text=True,
                          env={**os.environ, "TIERLINE_BROKER": f"127.0.0.1:{free_port()}"}, timeout=120)
    assert done.returncode == 4
    assert "waiting up to 3 s for Kafka: nothing answers at 127.0.0.1:" in done.stderr
    assert "gave up: Kafka did not answer for " in done.stderr
    assert "Traceback" not in done.stderr


def until_said(log: Path, words: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while words not in log.read_text():
        assert proc.poll() is None, f"exited {proc.returncode} before saying {words!r}: {log.read_text()}"
        assert time.monotonic() < deadline, f"never said {words!r}: {log.read_text()}"
        time.sleep(0.5)
