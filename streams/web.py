"""The worker's own pages on Faust's web server: ``/`` and ``/status.json`` for people (``streams.status_page``),
``/metrics`` for Prometheus, ``/livez`` and ``/readyz`` for orchestrators, and the handlers it is given (the
realtime tier's endpoints, ``agents.serve_realtime``)."""

from __future__ import annotations

import time
from typing import Awaitable, Callable

import faust
from aiohttp import web as aiohttp_web
from faust.types import AppT
from faust.web import Request, Response, View
from faust.web.drivers import aiohttp as aiohttp_driver

from streams.metrics import WorkerState, scrape
from streams.status_page import StatusBoard, refusal, render_body, render_page

__all__ = ["add_pages", "Handler", "ImpatientWeb"]

#: A page's handler: the request in, the response out (the realtime tier's, one per provider path).
Handler = Callable[[aiohttp_web.Request], Awaitable[aiohttp_web.StreamResponse]]

# Prometheus text format 0.0.4 (aiohttp sets the charset itself).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"


class ImpatientWeb(aiohttp_driver.Web):
    """Faust's aiohttp server, closing a connection that has not sent a whole request head within
    ``head_timeout_s`` of opening or of its last answer: a client sending its headers a byte at a time
    holds nothing for long. This is aiohttp's keep-alive timer, which in the aiohttp pyproject.toml asks
    for runs from the moment a connection opens; the realtime tier gives a body its own deadline."""

    production_blueprints = ()  # Faust's placeholder at "/" ({"status": "OK"}): the status page is there instead

    def __init__(self, app: AppT, *, head_timeout_s: float) -> None:
        super().__init__(app)
        self._runner = aiohttp_web.AppRunner(self.web_app, access_log=None, keepalive_timeout=head_timeout_s)


def add_pages(app: faust.App, state: WorkerState, routes: dict[str, Handler]) -> None:
    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        return web.bytes(scrape(state, time.time()), content_type=METRICS_CONTENT_TYPE)

    @app.page("/livez")
    async def livez(web: View, request: Request) -> Response:
        """200 while the process serves at all: restart it when this stops answering."""
        return web.json({"alive": True})

    async def ready(web: View, request: Request) -> Response:
        """200 once the worker has joined its group and loaded its state; 503 with what is missing before."""
        checks = state.checks()
        ready = all(checks.values())
        # A missing credential is said, but the worker is ready all the same: the other providers' work goes on.
        missing = {name: fix for name, fix in state.runtime.credentials.items() if fix}
        return web.json({"ready": ready, "checks": checks, "credentials_missing": missing},
                        status=200 if ready else 503)

    app.page("/readyz")(ready)
    app.page("/health")(ready)  # the older name of /readyz

    board = StatusBoard(state.runtime.settings, lambda: state.window.held_count)

    async def status(web: View, request: Request, *, as_json: bool) -> Response:
        key = request.query.get("key")
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        refused = refusal(state.runtime.settings, [offer for offer in (key, bearer) if offer])
        if refused is not None:
            return web.text(refused[1] + "\n", status=refused[0])
        try:
            doc = await board.snapshot()
        except Exception as exc:  # noqa: BLE001 - Kafka away, or no topics yet: said, and asked again next refresh
            return web.text(f"the status cannot be read from Kafka now: {type(exc).__name__}: {exc}\n", status=503)
        if as_json:
            return web.json(doc)
        return web.html(render_body(doc) if request.query.get("part") == "body" else render_page(doc, key))

    @app.page("/")
    async def page(web: View, request: Request) -> Response:
        return await status(web, request, as_json=False)

    @app.page("/status.json")
    async def data(web: View, request: Request) -> Response:
        return await status(web, request, as_json=True)

    for path, handler in routes.items():
        app.page(path)(_view(path, handler))


def _view(path: str, handler: Handler) -> type[View]:
    class Page(View):
        async def post(self, request: Request) -> Response:
            return await handler(request)  # type: ignore[arg-type, return-value]

    Page.__name__ = "page_" + path.strip("/").replace("/", "_").replace(".", "_")
    return Page
