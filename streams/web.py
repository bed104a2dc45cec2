"""The worker's own pages on Faust's web server: ``/metrics`` for Prometheus, ``/health`` for readiness,
and the handlers it is given (the realtime tier's endpoints, ``agents.serve_realtime``)."""

from __future__ import annotations

import time
from typing import Awaitable, Callable

import faust
from aiohttp import web as aiohttp_web
from faust.types import AppT
from faust.web import Request, Response, View
from faust.web.drivers import aiohttp as aiohttp_driver

from streams.metrics import WorkerState, scrape

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

    for path, handler in routes.items():
        app.page(path)(_view(path, handler))


def _view(path: str, handler: Handler) -> type[View]:
    class Page(View):
        async def post(self, request: Request) -> Response:
            return await handler(request)  # type: ignore[arg-type, return-value]

    Page.__name__ = "page_" + path.strip("/").replace("/", "_").replace(".", "_")
    return Page
