"""Provider webhooks end to end: the emulator announces each batch's end as OpenAI and Gemini do (signed, at least
once, now and then twice or late), a worker verifies them, and the batch's follower polls it at once.

The worker's polls are an hour apart here: a batch settled within the test's timeout was settled by its webhook.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any, Iterator

import orjson
import pytest
from standardwebhooks import Webhook

from streams.local.workload import make_items
from streams.settings import Settings
from tests.support import follow, free_port, publish_items, scraped, total

pytestmark = pytest.mark.integration

OPENAI_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
GEMINI_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                     headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def signed(secret: str, event: dict[str, Any], at: float | None = None) -> tuple[bytes, dict[str, str]]:
    body, when = orjson.dumps(event), int(at if at is not None else time.time())
    signature = Webhook(secret).sign(event["id"], datetime.fromtimestamp(when, timezone.utc), body)
    return body, {"webhook-id": event["id"], "webhook-timestamp": str(when), "webhook-signature": signature}


@pytest.fixture(scope="module")
def worker(workers: Any, emulator_port: int) -> Iterator[Any]:
    port = free_port()
    env = workers.env(TIERLINE_POLL_INITIAL_S="3600", TIERLINE_POLL_MAX_S="3600", TIERLINE_WEBHOOK_POLL_MAX_S="3600",
                      TIERLINE_GEMINI_WEBHOOK_SECRET=GEMINI_SECRET, TIERLINE_WEBHOOK_URL=f"http://127.0.0.1:{port}",
                      OPENAI_WEBHOOK_SECRET=OPENAI_SECRET)
    workers.start(env, TIERLINE_WEB_PORT=str(port))
    configure = orjson.dumps({"openai": {"url": f"http://127.0.0.1:{port}/webhooks/openai", "secret": OPENAI_SECRET},
                              "gemini": {"secret": GEMINI_SECRET}})
    assert post(emulator_port, "/_emulator/webhooks", configure, {}) == 200
    yield Settings.from_env({**env, "TIERLINE_WEB_PORT": str(port)})
    post(emulator_port, "/_emulator/webhooks", b"{}", {})


def test_a_batch_is_settled_by_its_webhook_long_before_its_next_poll(worker: Any) -> None:
    items = make_items(40, "hooked", providers=("openai", "gemini"))
    publish_items(worker, items)
    ids = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(worker, lambda p: ids <= set(p.results), timeout=120))
    assert set(progress.results) == ids and all(len(events) == 1 for events in progress.results.values())
    samples = scraped(worker.web_port)
    assert total(samples, "tierline_webhooks_total", provider="openai", outcome="accepted") >= 1
    assert total(samples, "tierline_webhooks_total", provider="gemini", outcome="accepted") >= 1


def test_forged_stale_and_replayed_webhooks_change_nothing(worker: Any) -> None:
    port = worker.web_port
    event = {"id": "evt_forged", "object": "event", "created_at": int(time.time()), "type": "batch.completed",
             "data": {"id": "batch_forged"}}
    body, headers = signed("whsec_" + base64.b64encode(b"not the secret at all, no").decode(), event)
    assert post(port, "/webhooks/openai", body, headers) == 401  # another secret
    assert post(port, "/webhooks/openai", body, {}) == 401  # no signature at all
    stale, stale_headers = signed(OPENAI_SECRET, event, at=time.time() - 3600)
    assert post(port, "/webhooks/openai", stale, stale_headers) == 401  # a recording replayed an hour later
    gemini_body, gemini_headers = signed(OPENAI_SECRET, {**event, "type": "batch.succeeded",
                                                          "data": {"name": "batches/x"}})
    assert post(port, "/webhooks/gemini", gemini_body, gemini_headers) == 401  # OpenAI's secret for Gemini's
    samples = scraped(port)
    assert total(samples, "tierline_webhooks_total", outcome="refused") >= 4

    # A settled batch announced again, and again: accepted, and nothing happens twice.
    items = make_items(4, "replayed", providers=("openai",))
    publish_items(worker, items)
    ids = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(worker, lambda p: ids <= set(p.results), timeout=120))
    for batch_id in {events[0]["batch_id"] for cid, events in progress.results.items() if cid in ids}:
        for n in range(3):
            again = {**event, "id": f"evt_again_{n}", "data": {"id": batch_id}}
            assert post(port, "/webhooks/openai", *signed(OPENAI_SECRET, again)) == 200
    time.sleep(2)
    after = asyncio.run(follow(worker, lambda p: ids <= set(p.results), timeout=30))
    assert all(len(after.results[cid]) == 1 for cid in ids)


def test_without_its_secret_a_providers_webhooks_are_not_taken(start_worker) -> None:  # type: ignore[no-untyped-def]
    settings = start_worker()
    assert post(settings.web_port, "/webhooks/openai", b"{}", {}) == 404
    assert post(settings.web_port, "/webhooks/gemini", b"{}", {}) == 404
