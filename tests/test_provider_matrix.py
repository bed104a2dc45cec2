"""Every batch provider through every failure mode: the same outcome asked of each cell.

Each cell runs tierline's submitter and poller agents in-process, against the emulator served
in-process and reached through the provider's official SDK (Bedrock's files in the session's S3
server), on the tests' in-memory Kafka. A cell passes when every good item has exactly one result,
every item the emulator is told to fail has one failure (final if the model refused it, retried once
if it expired with its batch), no custom_id was submitted in two provider batches, and the alert the
mode calls for was raised, once. The matrix is printed at the end of the run (``conftest.py``); a
mode a provider cannot have is said in its spec (``ProviderSpec.cannot``), and the matrix shows it with the
reason, as it would any the emulator could not play (``NOT_PLAYED``): never skipped silently.

``gateway`` is a provider defined only under ``tests/gateway``: it reaches the catalogue through
``TIERLINE_PROVIDER_PLUGINS`` and is played as the built-in ones are.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp
import orjson
import pytest

from agents.poll_batches import PollBatches
from agents.submit_batches import SubmitBatches
from core.outcomes import ItemContext
from core.validation import Accepted, validate
from emulator.s3_front import create_s3_front
from emulator.server import EmulatorConfig, create_app
from providers import BatchProvider, make_provider
from providers.base import BatchStatus
from providers.status_board import StatusBoard
from streams.local.stack import LANES_FILE, embedded_env
from streams.local.workload import make_items
from streams.settings import Settings
from streams.state.batch_log import BatchJob
from tests import fakes
from tests.support import serve_on_loopback

#: The built-in batch APIs, the lanes ``streams/data/providers.example.toml`` declares (OpenAI's shape), and the
#: plug-in defined in ``tests/gateway`` (Anthropic's).
PROVIDERS = ("anthropic", "openai", "bedrock", "gemini", "groq", "together", "azure", "gateway")
PLUGINS = "tests.gateway:spec"
CATALOGUE = Settings(providers_file=str(LANES_FILE), provider_plugins=PLUGINS).catalogue
ITEMS = 6  # per batch
#: The credentials each provider's SDK reads, as a worker without them lacks them.
CREDENTIALS = {"anthropic": ("ANTHROPIC_API_KEY",), "openai": ("OPENAI_API_KEY",),
               "bedrock": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), "gemini": ("GEMINI_API_KEY",),
               "groq": ("GROQ_API_KEY",), "together": ("TOGETHER_API_KEY",), "azure": ("AZURE_OPENAI_API_KEY",),
               "gateway": ("GATEWAY_API_KEY",)}
#: A create refused for room, in each provider's way: only one batch of two fits at once.
NO_ROOM = {"anthropic": {"anthropic_queue_limit": ITEMS}, "bedrock": {"bedrock_max_jobs": 1},
           "gemini": {"gemini_max_jobs": 1}, "gateway": {"anthropic_queue_limit": ITEMS}}
#: Items of each provider as make_items writes them; the gateway's are Anthropic's.
WRITTEN_AS = {"gateway": "anthropic"}
#: Cells the emulator cannot play yet, and why (what a provider cannot have is in its spec): printed in the matrix.
NOT_PLAYED: dict[tuple[str, str], str] = {}

#: Each cell's verdict goes in its report's ``user_properties`` as ``("matrix", (provider, mode, verdict))``:
#: conftest.py gathers them (from every xdist worker too) and prints the matrix at the end of the run.
Verdict = Callable[[str, object], None]


@dataclass
class Cell:
    """One provider in one mode: the emulator it talks to, the agents' runtime, and what came out."""

    provider: str
    port: int
    runtime: Any
    session: aiohttp.ClientSession
    monkeypatch: pytest.MonkeyPatch
    lines: dict[str, bytes] = field(default_factory=dict)  # each item's request line, by custom_id

    def marked(self, marker: str) -> set[str]:
        """The items the emulator is told to treat so (``#emulate:MARKER``)."""
        return {cid for cid, line in self.lines.items() if f"#emulate:{marker}".encode() in line}

    @property
    def refused(self) -> set[str]:
        """The items the model or the API refuses: each ends in one final failure."""
        return self.marked("errored") | self.marked("refuse-named") | self.marked("refuse-unnamed") | \
            self.marked("invalid-line")

    @property
    def good(self) -> set[str]:
        return set(self.lines) - self.refused - self.marked("expired")

    async def emulator(self, path: str, doc: dict[str, Any] | None = None) -> Any:
        url = f"http://127.0.0.1:{self.port}/_emulator/{path}"
        async with (self.session.post(url, json=doc) if doc is not None else self.session.get(url)) as answer:
            assert answer.status == 200, await answer.text()
            return await answer.json()

    def on(self, topic: str) -> list[dict[str, Any]]:
        return self.runtime.publisher.on(getattr(self.runtime.settings.topics, topic))

    def alerts(self) -> list[str]:
        return [alert["kind"] for alert in self.on("alerts") if alert["kind"] != "stalled"]

    def submitted(self) -> list[Any]:
        """The batch records written once the provider created the batch."""
        return [record for record in self.runtime.batch_log.records() if record.state == "submitted"]

    def settled(self) -> bool:
        """Every good item has its result, and every other its ending."""
        ended = {doc["custom_id"] for doc in self.on("results")} | {doc["custom_id"] for doc in self.on("failures")}
        return ended >= set(self.lines)

    async def until(self, condition: Callable[[], bool], what: str, timeout_s: float = 40.0) -> None:
        for _ in range(int(timeout_s / 0.05)):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.provider}: {what} did not happen within {timeout_s:.0f} s")


Scene = Callable[[Cell], Awaitable[None]]


async def nothing(cell: Cell) -> None:
    pass


async def settles(cell: Cell) -> None:
    await cell.until(cell.settled, "every result")


async def refused(cell: Cell) -> None:
    await cell.emulator("account", {"provider": cell.provider, "refusal": "unauthorized"})


async def fixed(cell: Cell) -> None:
    await cell.until(lambda: "provider_refused" in cell.alerts(), "the provider_refused alert")
    assert cell.on("results") == []
    await cell.emulator("account", {"provider": cell.provider, "refusal": None})
    await settles(cell)


async def keyless(cell: Cell) -> None:
    for name in CREDENTIALS[cell.provider]:
        cell.monkeypatch.delenv(name)


async def key_set(cell: Cell) -> None:
    await cell.until(lambda: "provider_refused" in cell.alerts(), "the provider_refused alert")
    for name in CREDENTIALS[cell.provider]:
        cell.monkeypatch.setenv(name, "emulator-key")
    await settles(cell)


async def cancelled(cell: Cell) -> None:
    """Cancelled at the provider (its console, another tool) once it is running: what it finished comes back."""
    await cell.until(lambda: bool(cell.submitted()), "the batch's create")
    [record] = cell.submitted()
    await asyncio.sleep(0.5)  # some of it run
    await cell.runtime.provider(cell.provider).cancel(record.batch_id)
    await settles(cell)


async def lost(cell: Cell) -> None:
    """The batch deleted at the provider (its console) or lost by it, once created: past the grace for a 404
    right after a create, its items go again."""
    await cell.until(lambda: bool(cell.submitted()), "the batch's create")
    await cell.emulator("lose", {"provider": cell.provider})
    await cell.until(lambda: {doc["custom_id"] for doc in cell.on("retry")} >= set(cell.lines), "every retry")


async def outage(cell: Cell) -> None:
    await cell.emulator("outage", {"provider": cell.provider, "reads": 3})


async def faulty_poll(cell: Cell) -> None:
    real, faults = StatusBoard.status, [KeyError("a bug of tierline's own")]

    async def status(board: StatusBoard, batch_id: str, created_at: float, max_age_s: float) -> BatchStatus:
        if faults:
            raise faults.pop()
        return await real(board, batch_id, created_at, max_age_s)

    cell.monkeypatch.setattr(StatusBoard, "status", status)


@dataclass(frozen=True)
class Mode:
    before: Scene  # played before the batches are handed to the submitter
    scene: Scene  # played after; ends once every result is in
    alert: str | None = None  # the one alert the mode calls for
    batches: int = 1
    config: Callable[[str], dict[str, Any]] = lambda provider: {}
    marked: dict[str, int] = field(default_factory=dict)  # make_items' markers: errored, expired items
    refusing: Callable[[str], str | None] = lambda provider: None  # the marker an item refused at create carries
    partial: bool = False  # stopped part way: each item has its result, or is retried once
    env: dict[str, str] = field(default_factory=dict)  # settings of its own


MODES = {
    "happy path": Mode(nothing, settles),
    "account refused, then fixed": Mode(refused, fixed, "provider_refused"),
    "credential missing, then set": Mode(keyless, key_set, "provider_refused"),
    "no room on create": Mode(nothing, settles, batches=2, config=lambda provider: NO_ROOM[provider]),
    "not found after create": Mode(nothing, settles, config=lambda provider: {"transient_404_s": 0.5}),
    "5xx while polling": Mode(outage, settles),
    "a fault of tierline's own": Mode(faulty_poll, settles, "poll_failed"),
    "download broken half way, messy results": Mode(nothing, settles,
                                                    config=lambda provider: {"messy_results": True}),
    "an item the model refuses": Mode(nothing, settles, marked={"errored": 1}),
    "items expired with the batch": Mode(nothing, settles, marked={"expired": 2}),
    "an item refused at create, named": Mode(nothing, settles, refusing=lambda provider: "refuse-named" if
                                             WRITTEN_AS.get(provider, provider) == "anthropic" else "invalid-line"),
    "an item refused at create, unnamed": Mode(nothing, settles, refusing=lambda provider: "refuse-unnamed"),
    "cancelled at the provider, partial results": Mode(nothing, cancelled, partial=True,
                                                       config=lambda provider: {"batch_seconds": 1.5}),
    "the batch lost at the provider": Mode(nothing, lost, "batch_not_found", partial=True,
                                           config=lambda provider: {"batch_seconds": 5.0},
                                           env={"TIERLINE_NOT_FOUND_GRACE_S": "1"}),
}


def refusing(item: dict[str, Any], marker: str) -> dict[str, Any]:
    """``item`` with the emulator's ``#emulate:MARKER`` in its prompt (a chat request's)."""
    message = item["params"]["messages"][0]
    return {**item, "params": {**item["params"], "messages": [{**message,
                                                               "content": f"{message['content']} #emulate:{marker}"}]}}


async def durable(runtime: Any, items: list[dict[str, Any]], key: str) -> tuple[BatchJob, dict[str, bytes]]:
    """``ITEMS`` of the items that go in one batch (one model, one invocation; the marked ones first), spooled as
    the window agent spools a closed batch, its intent written: the submitter's job, and each item's line."""
    accepted = [verdict for item in items
                if isinstance(verdict := validate(orjson.dumps(item), runtime.settings.catalogue), Accepted)]
    accepted.sort(key=lambda verdict: b"#emulate:" not in verdict.line)
    group = accepted[0].group
    batch = [verdict for verdict in accepted if verdict.group == group][:ITEMS]
    for verdict in batch:
        runtime.spool.append(key, verdict.line, orjson.dumps(ItemContext(verdict.item.custom_id, 1, 0, {}).encode()))
    spooled = runtime.spool.finish(key, group, len(batch), sum(len(verdict.line) + 1 for verdict in batch))
    job = BatchJob(await runtime.batch_log.intent(spooled, home=0), spooled, runtime.ownership.generation)
    return job, {verdict.item.custom_id: verdict.line for verdict in batch}


async def play(provider: str, mode: Mode, tmp_path: Path, s3_port: int, monkeypatch: pytest.MonkeyPatch) -> Cell:
    """Serve the emulator, start the agents, hand them ``mode.batches`` batches of ``provider``'s items, and play
    the mode."""
    monkeypatch.setattr("agents.submit_batches.ROOM_FIRST_WAIT_S", 0.05)
    async with AsyncExitStack() as stack:
        app = create_app(EmulatorConfig(**{"batch_seconds": 0.1, "data_dir": tmp_path / "emulator",
                                           "bedrock_min_records": 1, "anthropic_accounts": ("gateway",),
                                           "lanes": tuple(Settings(providers_file=str(LANES_FILE)).lanes),
                                           **mode.config(provider)}))
        runner, port = await serve_on_loopback(app)
        stack.push_async_callback(runner.cleanup)
        if mode.config(provider).get("messy_results"):  # Bedrock's results are downloaded from S3: cut there
            front, s3_port = await serve_on_loopback(create_s3_front(f"http://127.0.0.1:{s3_port}"))
            stack.push_async_callback(front.cleanup)
        env = embedded_env(0, port, tmp_path, s3_port, TIERLINE_POLL_INITIAL_S="0.05", TIERLINE_POLL_MAX_S="0.2",
                           AWS_EC2_METADATA_DISABLED="true", TIERLINE_PROVIDER_PLUGINS=PLUGINS,
                           GATEWAY_BASE_URL=f"http://127.0.0.1:{port}/gateway", GATEWAY_API_KEY="emulator-key",
                           **mode.env)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = Settings.from_env(env)
        runtime = fakes.runtime(settings, tmp_path)
        made: dict[str, BatchProvider] = {}

        def provider_of(name: str) -> BatchProvider:
            if name not in made:  # without its credential this raises, and is asked again next time
                made[name] = make_provider(name, settings)
            return made[name]

        boards: dict[str, StatusBoard] = {}
        runtime.provider = provider_of
        runtime.statuses = lambda name: boards.get(name) or boards.setdefault(name, StatusBoard(provider_of(name)))
        submitter = SubmitBatches(runtime, poll=lambda job: poller.put(job))
        poller = PollBatches(runtime, resubmit=submitter.put)
        cell = Cell(provider, port, runtime, await stack.enter_async_context(aiohttp.ClientSession()), monkeypatch)
        await mode.before(cell)
        loop = asyncio.create_task(submitter._run(submitter))  # a Service.task: called with its service
        try:
            for n in range(mode.batches):
                written = make_items(4 * ITEMS, f"{provider}-{n}", providers=(WRITTEN_AS.get(provider, provider),),
                                     **mode.marked)
                items = [{**item, "provider": provider} for item in written]
                if (marker := mode.refusing(provider)) is not None:
                    items[1] = refusing(items[1], marker)
                job, lines = await durable(runtime, items, f"tl-{provider}-{n}")
                cell.lines.update(lines)
                submitter.put(job)
            await mode.scene(cell)
            await asyncio.sleep(0.2)  # anything more that would come out, such as a second result
        finally:
            loop.cancel()
            for adapter in made.values():
                await adapter.close()
        submitted = Counter(cid for batch in (await cell.emulator("batches"))["batches"] for cid in batch["custom_ids"])
        assert {cid: n for cid, n in submitted.items() if n > 1} == {}, "submitted in two batches"
        return cell


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_cell(provider: str, mode: str, tmp_path: Path, s3_port: int, monkeypatch: pytest.MonkeyPatch,
                    record_property: Verdict) -> None:
    if (why := CATALOGUE[provider].cannot.get(mode)) is not None:
        record_property("matrix", (provider, mode, f"cannot: {why}"))
        return
    if (why := NOT_PLAYED.get((provider, mode))) is not None:
        record_property("matrix", (provider, mode, f"not played: {why}"))
        return
    cell = await play(provider, MODES[mode], tmp_path, s3_port, monkeypatch)
    if MODES[mode].partial:
        results = Counter(doc["custom_id"] for doc in cell.on("results"))
        retried = Counter(doc["custom_id"] for doc in cell.on("retry"))
        assert not set(results) & set(retried) and set(results) | set(retried) == set(cell.lines), "one ending each"
        assert max([*results.values(), *retried.values()]) == 1 and retried, "each once, and some were cut short"
        assert all(not doc["final"] for doc in cell.on("failures"))
        assert cell.alerts() == ([MODES[mode].alert] if MODES[mode].alert else []), "the alert the mode calls for"
        record_property("matrix", (provider, mode, "ok"))
        return
    assert Counter(doc["custom_id"] for doc in cell.on("results")) == Counter(cell.good), "one result each"
    failures = {doc["custom_id"]: doc["final"] for doc in cell.on("failures")}
    assert len(failures) == len(cell.on("failures")), "one failure event each"
    assert failures == {**dict.fromkeys(cell.refused, True), **dict.fromkeys(cell.marked("expired"), False)}
    assert {doc["custom_id"] for doc in cell.on("retry")} == cell.marked("expired"), "the expired retried, once"
    assert cell.alerts() == ([MODES[mode].alert] if MODES[mode].alert else []), "the alert the mode calls for"
    record_property("matrix", (provider, mode, "ok"))


def test_what_a_provider_cannot_have_names_a_mode_of_the_matrix() -> None:
    """A spec's ``cannot`` is read by mode name: one misspelt would leave its cell played, and failing."""
    for spec in CATALOGUE.values():
        assert set(spec.cannot) <= set(MODES), spec.name
