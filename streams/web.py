"""The worker's own pages on Faust's web server: ``/metrics`` for Prometheus, ``/health`` for readiness,
and the realtime tier's endpoints (``agents.serve_realtime``)."""

from __future__ import annotations

import time

import faust
from faust.web import Request, Response, View

from streams.metrics import scrape
from agents.serve_realtime import ROUTES, RealtimeTier
from streams.runtime import Runtime

__all__ = ["add_pages"]

# Prometheus text format 0.0.4 (aiohttp sets the charset itself).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"


def add_pages(app: faust.App, runtime: Runtime, realtime: RealtimeTier) -> None:
    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        return web.bytes(scrape(runtime, time.time()), content_type=METRICS_CONTENT_TYPE)

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        """200 once the worker has joined its group and loaded its state; 503 with what is missing before."""
        ready, checks = runtime.ready()
        return web.json({"ready": ready, "checks": checks}, status=200 if ready else 503)

    for path, (provider, provider_path) in ROUTES.items():
        app.page(path)(_realtime_view(realtime, provider, provider_path))


def _realtime_view(realtime: RealtimeTier, provider: str, provider_path: str) -> type[View]:
    class Realtime(View):
        async def post(self, request: Request) -> Response:
            return await realtime.forward(request, provider, provider_path)  # type: ignore[arg-type, return-value]

    Realtime.__name__ = f"realtime_{provider}_{provider_path.strip('/').replace('/', '_')}"
    return Realtime
