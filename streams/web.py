"""The worker's own pages on Faust's web server: ``/metrics`` for Prometheus, ``/health`` for readiness."""

from __future__ import annotations

import time

import faust
from faust.web import Request, Response, View

from streams.metrics import scrape
from streams.runtime import Runtime

__all__ = ["add_pages"]

# Prometheus text format 0.0.4 (aiohttp sets the charset itself).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"


def add_pages(app: faust.App, runtime: Runtime) -> None:
    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        return web.bytes(scrape(runtime, time.time()), content_type=METRICS_CONTENT_TYPE)

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        """200 once the worker has joined its group and loaded its state; 503 with what is missing before."""
        ready, checks = runtime.ready()
        return web.json({"ready": ready, "checks": checks}, status=200 if ready else 503)
