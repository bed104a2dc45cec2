"""A front to the S3 server where Bedrock's files live, breaking each job output's first download half way.

Bedrock writes a job's results to the account's own bucket, so a download that breaks off is S3's (or the
network's), not Bedrock's: this front stands where the worker reaches S3 (``AWS_ENDPOINT_URL_S3``), passes
every request through to the S3 server behind it, and cuts the first read of each ``*.jsonl.out`` object,
as the other providers' emulators cut their first results download (``messy_results``).
"""

from __future__ import annotations

from typing import AsyncIterator

import aiohttp
from aiohttp import web

from emulator.downloads import broken_off

__all__ = ["create_s3_front"]

#: Hop-by-hop and framing headers: the front frames its own answers.
_OWN = frozenset({"host", "content-length", "transfer-encoding", "connection"})
SESSION = web.AppKey("session", aiohttp.ClientSession)


def create_s3_front(upstream: str) -> web.Application:
    """The front to the S3 server at ``upstream`` (``http://host:port``)."""
    cut: set[str] = set()
    app = web.Application(client_max_size=1 << 30)

    async def session(app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = aiohttp.ClientSession(auto_decompress=False)
        yield
        await app[SESSION].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {name: value for name, value in request.headers.items() if name.lower() not in _OWN}
        async with app[SESSION].request(request.method, upstream + request.path_qs, headers=headers,
                                          data=await request.read()) as answer:
            payload = await answer.read()
            passed = {name: value for name, value in answer.headers.items() if name.lower() not in _OWN}
        if request.method == "GET" and request.path.endswith(".jsonl.out") and request.path not in cut \
                and answer.status == 200 and "range" not in request.headers:
            cut.add(request.path)
            return await broken_off(request, payload)
        return web.Response(body=payload, status=answer.status, headers=passed)

    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app
