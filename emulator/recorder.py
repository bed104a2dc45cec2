"""Every batch the emulator accepted, so tests can count submissions per custom_id."""

from __future__ import annotations

from aiohttp import web

__all__ = ["Recorder"]


class Recorder:
    """Keeps (provider, batch id, custom_ids) for each accepted batch, in order."""

    def __init__(self) -> None:
        self.batches: list[dict[str, object]] = []

    def record(self, provider: str, batch_id: str, custom_ids: list[str]) -> None:
        self.batches.append({"provider": provider, "id": batch_id, "custom_ids": custom_ids})

    async def handle(self, _request: web.Request) -> web.Response:
        return web.json_response({"batches": self.batches})
