"""The demo's realtime and async parts: answers streamed through the worker, and signed webhooks received."""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import anthropic
import orjson

from standardwebhooks import Webhook, WebhookVerificationError
from streams.cli.follow import Follower, run_keys
from streams.cli.produce import publish_lines
from streams.settings import Settings
from streams.local.workload import make_items

__all__ = ["stream_realtime", "run_async", "run_flex"]

QUESTIONS = ("Which tide pools near Cannon Beach are best at low tide?",
             "What should I bring to look at tide pools in winter?")


def stream_realtime(web_port: int, say: Callable[[str], None]) -> None:
    """A user waiting: two questions streamed through the worker's realtime endpoint, token by token."""
    client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{web_port}/realtime/anthropic", api_key="unused")
    for question in QUESTIONS:
        say(f"  you: {question}")
        print("  claude: ", end="", flush=True)
        started = time.perf_counter()
        first = None
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=200,
                                    messages=[{"role": "user", "content": question}]) as stream:
            for text in stream.text_stream:
                first = first or time.perf_counter() - started
                print(text, end="", flush=True)
        say(f"\n  (first token after {(first or 0) * 1000:.0f} ms; recorded on tierline.results as tier realtime)")


class _Receiver(BaseHTTPRequestHandler):
    secret = ""
    received: list[tuple[str, str | None]] = []  # custom_id, what is wrong with the signature

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:  # as a receiver verifies it, with the Standard Webhooks library
            Webhook(self.secret).verify(body, dict(self.headers.items()))
            problem = None
        except WebhookVerificationError as exc:
            problem = str(exc)
        self.received.append((orjson.loads(body).get("custom_id", "?"), problem))
        self.send_response(204 if problem is None else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def run_async(settings: Settings, secret: str, say: Callable[[str], None], count: int = 5,
              timeout: float = 120) -> bool:
    """Reports a user will look at later: async items with a webhook, each signature checked on arrival."""
    _Receiver.secret, _Receiver.received = secret, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/reports"
    items = [{**item, "max_latency_s": 3600, "callback_url": url}
             for item in make_items(count, "demo-report", providers=("openai",))]
    started = time.monotonic()
    asyncio.run(publish_lines(settings, [orjson.dumps(item) for item in items]))
    say(f"  published {count} reports wanted within the hour (max_latency_s 3600), with a callback to {url}")
    try:
        while len(_Receiver.received) < count and time.monotonic() - started < timeout:
            time.sleep(0.05)
    finally:
        server.shutdown()
    good = sum(1 for _, problem in _Receiver.received if problem is None)
    say(f"  {len(_Receiver.received)} webhook(s) received in {time.monotonic() - started:.1f}s, "
        f"{good} verified as Standard Webhooks")
    return good == count


def run_flex(settings: Settings, say: Callable[[str], None], count: int = 4, timeout: float = 120) -> bool:
    """Tickets to classify within three hours, cost first: OpenAI's flex processing, at the batch price."""
    deadline = time.time() + 3 * 3600
    lines = [orjson.dumps({"custom_id": f"demo-flex-{n}", "provider": "openai", "priority": "cost",
                           "deadline": deadline, "metadata": {"team": "support"},
                           "params": {"model": "o4-mini", "max_completion_tokens": 200, "messages": [
                               {"role": "user", "content": f"Classify support ticket {n}: refund or bug?"}]}})
             for n in range(count)]

    async def publish_and_follow() -> tuple[bool, float, float]:
        async with Follower(settings, run_keys(lines)) as follower:
            await publish_lines(settings, lines)
            done = await follower.until_done(timeout)
        return done and len(follower.progress.succeeded) == count, follower.progress.cost_usd, \
            follower.progress.realtime_usd

    started = time.monotonic()
    say(f"  published {count} o4-mini tickets due within 3 h, priority cost: routed to tier flex")
    done, usd, full = asyncio.run(publish_and_follow())
    say(f"  {count if done else 'not all'} answered in {time.monotonic() - started:.1f}s with service_tier flex: "
        f"${usd:.5f}, against ${full:.5f} at the standard tier")
    return done
