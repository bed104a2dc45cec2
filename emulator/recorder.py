"""Every batch the emulator accepted, so tests can count submissions per custom_id; and every API request,
so benchmarks can say how often a worker calls its providers."""

from __future__ import annotations

from collections import Counter

from aiohttp import web

__all__ = ["Recorder"]


class Recorder:
    """Keeps (provider, batch id, custom_ids) for each accepted batch, in order."""

    def __init__(self) -> None:
        self.batches: list[dict[str, object]] = []
        self.requests: Counter[str] = Counter()  # by method and route, as "GET /v1/messages/batches/{id}"

    def record(self, provider: str, batch_id: str, custom_ids: list[str]) -> None:
        self.batches.append({"provider": provider, "id": batch_id, "custom_ids": custom_ids})

    async def handle(self, _request: web.Request) -> web.Response:
        return web.json_response({"batches": self.batches})

    @web.middleware
    async def count(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else request.path
        if not route.startswith("/_emulator/"):
            self.requests[f"{request.method} {route}"] += 1
        return await handler(request)

    async def handle_requests(self, _request: web.Request) -> web.Response:
        return web.json_response({"total": sum(self.requests.values()), "by_route": dict(self.requests)})
