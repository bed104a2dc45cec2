"""A download that breaks off half way, as real result downloads sometimes do."""

from __future__ import annotations

from aiohttp import web

__all__ = ["broken_off"]


async def broken_off(request: web.Request, data: bytes) -> web.StreamResponse:
    """Half the body, then the connection drops: the Content-Length promised the whole of it."""
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream",
                                           "Content-Length": str(len(data))})
    await response.prepare(request)
    await response.write(data[:len(data) // 2])
    if request.transport is not None:
        request.transport.close()
    return response
