"""A TLS front for the embedded broker, since Tansu 0.6's own TLS cannot be switched on.

Tansu's ``--cert`` and ``--key`` are declared as one exclusive group: given both, it refuses
to start; given one, it has no TLS. So the tests terminate TLS here, in a thread of the test
process: clients connect with TLS to this front, which passes the bytes on to the broker's
plaintext port. The broker advertises the front's port, so every connection a client makes
(bootstrap, then the partition leaders) comes through it. Reading what clients send, it
notes the ``client.id`` of every request, to show which clients connected.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["TlsFront", "tls_front"]


class TlsFront:
    def __init__(self, port: int, broker_port: int, context: ssl.SSLContext) -> None:
        self.port, self._broker_port, self._context = port, broker_port, context
        self.client_ids: set[str] = set()
        self.handshake_failures = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> None:
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self._context,
                                 ssl_handshake_timeout=5))
        self._loop.set_exception_handler(self._on_error)
        ready.set()
        self._loop.run_forever()

    def _on_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        if isinstance(context.get("exception"), ssl.SSLError):
            self.handshake_failures += 1  # a client that does not trust us, or that we do not trust

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", self._broker_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(self._requests(client_reader, broker_writer), _pipe(broker_reader, client_writer))

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Client to broker, a request at a time: size, api key, version, correlation id, client id."""
        try:
            while True:
                size = struct.unpack(">i", await reader.readexactly(4))[0]
                body = await reader.readexactly(size)
                (length,) = struct.unpack(">h", body[8:10])
                if length > 0:
                    self.client_ids.add(body[10:10 + length].decode(errors="replace"))
                writer.write(struct.pack(">i", size) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@contextmanager
def tls_front(port: int, broker_port: int, context: ssl.SSLContext) -> Iterator[TlsFront]:
    front = TlsFront(port, broker_port, context)
    front.start()
    try:
        yield front
    finally:
        front.stop()
