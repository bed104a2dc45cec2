"""Callbacks reach only the address that was checked: a name that resolves to a private address when
the connection is made (DNS rebinding) is refused and never connected to, and a redirect is never
followed. Against a real receiver on 127.0.0.1, with the name's resolution given."""

from __future__ import annotations

import base64
import dataclasses
import socket
from typing import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from streams.callbacks import callback_session, deliver
from streams.settings import Settings
from tests.support import serve_on_loopback

BODY = b'{"custom_id": "rebound", "tier": "async"}'
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


class Resolves(AbstractResolver):
    """Every name resolves to ``address`` (a rebinding name's second answer)."""

    def __init__(self, address: str) -> None:
        self.address, self.asked = address, 0

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked += 1
        return [{"hostname": host, "host": self.address, "port": port, "family": socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        pass


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[int, list[str]]]:
    """``/ok`` takes a callback; ``/moved`` answers 307 to ``/ok``, which a follower would call."""
    hits: list[str] = []

    async def take(request: web.Request) -> web.Response:
        hits.append(request.path)
        if request.path == "/moved":
            return web.Response(status=307, headers={"location": "/ok"})
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/ok", take)
    app.router.add_post("/moved", take)
    runner, port = await serve_on_loopback(app)
    yield port, hits
    await runner.cleanup()


def settings(**change: object) -> Settings:
    return dataclasses.replace(Settings.from_env({}), callback_secrets=SECRET, callback_attempts=2,
                               callback_retry_s=0.01, **change)  # type: ignore[arg-type]


async def test_a_name_that_resolves_to_a_private_address_at_connect_time_is_refused_unconnected(
        receiver: tuple[int, list[str]]) -> None:
    port, hits = receiver
    lookup = Resolves("127.0.0.1")
    async with callback_session(settings(), lookup) as session:
        problem = await deliver(session, settings(), f"http://hooks.rebind.test:{port}/ok", BODY, "rebound", "msg_1")
    assert problem is not None and problem.type == "callback_refused"
    assert "hooks.rebind.test" in problem.message and "127.0.0.1, a loopback address" in problem.message
    assert lookup.asked == 1 and hits == []  # refused at once, not retried, and never connected


async def test_the_same_name_is_delivered_to_when_private_addresses_are_allowed(
        receiver: tuple[int, list[str]]) -> None:
    port, hits = receiver
    allowed = settings(callback_allow_private=1)
    async with callback_session(allowed, Resolves("127.0.0.1")) as session:
        assert await deliver(session, allowed, f"http://hooks.rebind.test:{port}/ok", BODY, "rebound", "msg_1") is None
    assert hits == ["/ok"]


async def test_a_redirect_is_not_followed(receiver: tuple[int, list[str]]) -> None:
    port, hits = receiver
    allowed = settings(callback_allow_private=1)
    async with callback_session(allowed, Resolves("127.0.0.1")) as session:
        problem = await deliver(session, allowed, f"http://hooks.example.test:{port}/moved", BODY, "moved", "msg_2")
    assert problem is not None and problem.type == "callback_failed" and "HTTP 307" in problem.message
    assert hits == ["/moved", "/moved"]  # each attempt, and never /ok
