"""Routing from Kafka, and the async-queue tier: limits, back-off, signed callbacks, SLA accounting."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import orjson
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from core.callbacks import SIGNATURE_HEADER, verify, webhook_id
from streams.settings import Settings
from streams.local.workload import make_items
from tests.support import Workers, follow, log_events, publish_items, serve_on_loopback, slow_emulator_workers

SECRET = "callback-secret"  # the older header's
OLD, NEW = ("whsec_" + base64.b64encode(fill * 32).decode() for fill in (b"o", b"n"))  # being rotated


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: ``/ok`` takes every callback, ``/down`` answers 500, ``/later``
    answers 503 while ``refusing``."""

    port: int = 0
    received: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)  # path, body, headers
    refusing: bool = True
    taken_later: list[bytes] = field(default_factory=list)  # the bodies /later took

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    async def take(request: web.Request) -> web.Response:
        body = await request.read()
        found.received.append((request.path, body, dict(request.headers)))
        if request.path == "/later":
            if found.refusing:
                return web.Response(status=503)
            found.taken_later.append(body)
            return web.Response(status=200)
        return web.Response(status=200 if request.path == "/ok" else 500)

    async def serve() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/ok", take)
        app.router.add_post("/down", take)
        app.router.add_post("/later", take)
        runner, found.port = await serve_on_loopback(app)
        return runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(serve())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    yield found
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def item(custom_id: str, provider: str = "openai", **routing: object) -> dict:
    [base] = make_items(1, custom_id, providers=(provider,))
    return {**base, "custom_id": custom_id, **routing}


@pytest.fixture(scope="module")
def deployment(workers: Workers, receiver: Receiver):  # type: ignore[no-untyped-def]
    """A worker with an async limit of 120 requests a minute to OpenAI and an SLA nothing meets."""
    env = workers.env(TIERLINE_ASYNC_LIMITS='{"openai": {"rpm": 120}}', TIERLINE_ASYNC_SLA_S="0.001",
                      TIERLINE_CALLBACK_SECRETS=f"{OLD},{NEW}", TIERLINE_CALLBACK_SECRET=SECRET,
                      TIERLINE_CALLBACK_ALLOW_PRIVATE="1",
                      TIERLINE_CALLBACK_ATTEMPTS="2", TIERLINE_CALLBACK_RETRY_S="0.1")
    proc = workers.start(env)
    return Settings.from_env(env), proc


def test_each_item_goes_to_the_tier_its_needs_call_for_and_says_why(deployment) -> None:  # type: ignore[no-untyped-def]
    settings, _ = deployment
    now = time.time()
    items = [
        item("route-chat", "anthropic", user_waiting=True),
        item("route-report", max_latency_s=3600),
        item("route-overnight", bulk=True),
        item("route-urgent-batch", tier="batch", deadline=now + 600),
        item("route-gemini-report", "gemini", max_latency_s=3600),  # generateContent
        item("route-groq-report", "groq", max_latency_s=3600),  # a declared lane's chat completions
        item("route-azure-report", "azure", max_latency_s=3600),  # an Azure deployment's
    ]
    publish_items(settings, items)
    ids = {i["custom_id"] for i in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= set(p.results), timeout=120))
    result = {cid: progress.results[cid][0] for cid in ids}
    assert result["route-chat"]["tier"] == "realtime"
    assert result["route-chat"]["route"] == ["a user is waiting for the answer"]
    assert result["route-report"]["tier"] == "async" and result["route-report"]["batch_id"] is None
    assert result["route-overnight"]["tier"] == "batch" and result["route-overnight"]["batch_id"]
    assert "part of a bulk volume" in result["route-overnight"]["route"]
    assert result["route-urgent-batch"]["tier"] == "async"
    assert result["route-urgent-batch"]["route"][0].startswith("asked for batch, but its deadline")
    assert "Answer to" in result["route-gemini-report"]["response"]["candidates"][0]["content"]["parts"][0]["text"]
    assert result["route-groq-report"]["response"]["model"] == "llama-3.1-8b-instant"
    assert result["route-azure-report"]["cost_usd"] > 0  # its deployment priced as the model it serves
    for cid in ("route-chat", "route-report", "route-gemini-report", "route-groq-report",
                "route-azure-report"):  # full price off the batch tier
        assert result[cid]["cost_usd"] == result[cid]["realtime_usd"] > 0


def test_async_calls_keep_to_the_limit_and_back_off_when_the_provider_is_overloaded(deployment) -> None:  # type: ignore[no-untyped-def]
    settings, proc = deployment
    items = [item(f"paced-{n}", max_latency_s=3600) for n in range(8)]
    # Anthropic answers 529 (overloaded) to this one's first call: backed off, not counted as an attempt.
    items.append(item("overloaded-once", "anthropic", max_latency_s=3600,
                      params={"model": "claude-haiku-4-5", "max_tokens": 32,
                              "messages": [{"role": "user", "content": "Summarise #emulate:flaky"}]}))
    publish_items(settings, items)
    ids = {i["custom_id"] for i in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= set(p.results), timeout=120))
    openai_done = sorted(progress.result_at[f"paced-{n}"][0] for n in range(8))
    # 120 a minute is two a second after a first second's worth: 8 calls take at least 3 s.
    assert openai_done[-1] - openai_done[0] >= 2.5
    overloaded = progress.results["overloaded-once"][0]
    assert overloaded["attempt"] == 1 and not progress.failures["overloaded-once"]
    assert any(line["custom_id"] == "overloaded-once" for line in log_events(proc, "async_backing_off"))
    # Every async item took longer than the 1 ms SLA of this deployment: each is counted.
    missed = {line["custom_id"] for line in log_events(proc, "sla_missed")}
    assert ids <= missed


def test_results_are_posted_to_their_callback_signed_and_a_callback_that_never_succeeds_is_a_failure(
        deployment, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    settings, _ = deployment
    items = [item("called-back", max_latency_s=3600, callback_url=receiver.url("/ok")),
             item("never-called-back", max_latency_s=3600, callback_url=receiver.url("/down"))]
    publish_items(settings, items)
    progress = asyncio.run(follow(settings, lambda p: "called-back" in p.results
                                  and p.failures.get("never-called-back"), timeout=120))
    [(path, body, headers)] = [r for r in receiver.received if r[0] == "/ok"]
    for secret in (OLD, NEW):  # Standard Webhooks, as a receiver's own library verifies it
        assert Webhook(secret).verify(body, headers)["custom_id"] == "called-back"
    assert headers["webhook-id"] == webhook_id("called-back")
    assert verify(SECRET.encode(), headers[SIGNATURE_HEADER], body, now=time.time()) is None  # the older one
    posted = orjson.loads(body)
    assert posted["custom_id"] == "called-back" and posted["tier"] == "async"
    assert posted["response"] == progress.results["called-back"][0]["response"]
    retried = [r[2] for r in receiver.received if r[0] == "/down"]
    assert len(retried) == 2 and len({h["webhook-id"] for h in retried}) == 1  # TIERLINE_CALLBACK_ATTEMPTS, one id
    [failure] = progress.failures["never-called-back"]
    assert failure["error"]["type"] == "callback_failed" and failure["final"]
    assert progress.results["never-called-back"]  # the result itself is not lost


def test_a_callback_to_a_private_address_is_refused_unless_allowed(workers: Workers, receiver: Receiver) -> None:
    env = workers.env(TIERLINE_CALLBACK_SECRETS=NEW)  # TIERLINE_CALLBACK_ALLOW_PRIVATE left at 0
    workers.start(env)
    settings = Settings.from_env(env)
    publish_items(settings, [item("refused-callback", max_latency_s=3600, callback_url=receiver.url("/ok"))])
    progress = asyncio.run(follow(settings, lambda p: p.failures.get("refused-callback"), timeout=120))
    [failure] = progress.failures["refused-callback"]
    assert failure["error"]["type"] == "callback_refused" and "loopback address" in failure["error"]["message"]
    assert progress.results["refused-callback"]
    assert not [r for r in receiver.received if b"refused-callback" in r[1]]


def flex_item(custom_id: str, model: str = "o4-mini", note: str = "", **routing: object) -> dict:
    params = {"model": model, "max_completion_tokens": 256,
              "messages": [{"role": "user", "content": f"Classify ticket {custom_id}. {note}"}]}
    return {"custom_id": custom_id, "provider": "openai", "params": params, **routing}


def test_flex_calls_are_billed_at_the_batch_price_and_fall_back_when_the_deadline_cannot_wait(deployment) -> None:  # type: ignore[no-untyped-def]
    settings, proc = deployment
    now = time.time()
    items = [flex_item("flex-asked", tier="flex"),
             flex_item("flex-routed", priority="cost", deadline=now + 3 * 3600),
             flex_item("flex-busy", note="#emulate:flex-busy", tier="flex", deadline=now + 20),
             flex_item("flex-not-offered", model="gpt-4o-mini", tier="flex")]
    publish_items(settings, items)
    ids = {i["custom_id"] for i in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= set(p.results), timeout=120))
    result = {cid: progress.results[cid][0] for cid in ids}
    for cid in ("flex-asked", "flex-routed"):
        event = result[cid]
        assert event["tier"] == "flex" and event["batch_id"] is None
        assert event["response"]["service_tier"] == "flex"  # called with service_tier: flex
        assert event["cost_usd"] == pytest.approx(event["realtime_usd"] / 2) and event["cost_usd"] > 0
    assert "cost comes first: flex processing, at the batch price" in result["flex-routed"]["route"]
    busy = result["flex-busy"]  # refused for capacity, its deadline 20 s away: the standard tier at once
    assert busy["tier"] == "async" and busy["response"].get("service_tier") != "flex"
    assert "deadline leaves no time to wait" in busy["route"][-1]
    assert busy["cost_usd"] == busy["realtime_usd"] > 0 and not progress.failures["flex-busy"]
    assert log_events(proc, "flex_fell_back")
    assert result["flex-not-offered"]["tier"] == "async"
    assert "does not offer flex processing" in result["flex-not-offered"]["route"][0]


def test_a_provider_answering_429_is_waited_for_not_failed(broker_port: int, s3_port: int,
                                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    """The provider takes two requests a second; tierline, with no limit of its own, sends eight at once."""
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, 1, "--rpm", "120") as pool:
        env = pool.env()
        proc = pool.start(env)
        settings = Settings.from_env(env)
        items = [item(f"limited-{n}", max_latency_s=3600) for n in range(8)]
        publish_items(settings, items)
        ids = {i["custom_id"] for i in items}
        progress = asyncio.run(follow(settings, lambda p: ids <= set(p.results), timeout=120))
        assert all(progress.results[cid][0]["attempt"] == 1 and not progress.failures[cid] for cid in ids)
        backed_off = [line for line in log_events(proc, "async_backing_off") if line["status"] == 429]
        assert backed_off and all(0 < line["seconds"] <= 1 for line in backed_off)  # the provider's retry-after-ms


def test_callbacks_being_retried_when_their_worker_dies_end_with_the_next_one(
        workers: Workers, receiver: Receiver) -> None:
    """Killed between attempts: one callback is taken once the receiver is back, the other (never taken)
    ends as one final callback_failed; the provider is not called again for either."""
    env = workers.env(TIERLINE_CALLBACK_SECRETS=NEW, TIERLINE_CALLBACK_ALLOW_PRIVATE="1",
                      TIERLINE_CALLBACK_ATTEMPTS="4", TIERLINE_CALLBACK_RETRY_S="1")
    worker = workers.start(env)
    settings = Settings.from_env(env)
    receiver.refusing = True
    publish_items(settings, [item("cb-later", max_latency_s=3600, callback_url=receiver.url("/later")),
                             item("cb-never", max_latency_s=3600, callback_url=receiver.url("/down"))])

    def asked(path: str, cid: str) -> int:
        return sum(1 for p, body, _ in receiver.received if p == path and cid.encode() in body)

    deadline = time.monotonic() + 60
    while not (asked("/later", "cb-later") and asked("/down", "cb-never")):
        assert time.monotonic() < deadline, "no first callback attempt"
        time.sleep(0.1)
    workers.kill(worker)  # between the first attempts and the next
    before = asked("/down", "cb-never")
    receiver.refusing = False
    workers.start(env)
    asyncio.run(follow(settings, lambda p: p.failures.get("cb-never"), timeout=120))
    time.sleep(5)  # what a second copy of a callback would do, it would have done by now
    progress = asyncio.run(follow(settings, lambda p: "cb-never" in p.failures, timeout=30))
    assert [doc for doc in receiver.taken_later if b"cb-later" in doc]  # delivered by the next worker
    [failed] = progress.failures["cb-never"]  # one final failure, however many copies the crash left
    assert failed["error"]["type"] == "callback_failed" and failed["final"]
    assert "cb-later" not in progress.failures
    # Every attempt was made, across both workers (at least once each: one may be made again after the
    # crash), and each as the same Standard Webhooks message, for the receiver to deduplicate.
    assert before < 4 <= asked("/down", "cb-never")
    assert len({h["webhook-id"] for p, body, h in receiver.received if b"cb-never" in body}) == 1
    assert len(progress.results["cb-later"]) == len(progress.results["cb-never"]) == 1  # no second provider call
