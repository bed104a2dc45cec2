"""A TLS and SASL front for the embedded broker: what Tansu 0.6 cannot do itself.

Tansu's ``--cert`` and ``--key`` are declared as one exclusive group (given both, it refuses
to start), and with ``--authentication`` it refuses every login (its memory and S3 storage
keep no SCRAM credentials; PLAIN is not built in). So the tests terminate TLS, and SASL
PLAIN, here, in a thread of the test process: clients connect to this front, which passes
the bytes on to the broker's plaintext port. The broker advertises the front's port, so
every connection a client makes (bootstrap, then the partition leaders) comes through it.

With ``users``, a connection must log in first, as a Kafka broker requires: ApiVersions is
passed on, SaslHandshake and SaslAuthenticate are answered here (PLAIN only), anything else
before a good login closes the connection. Reading what clients send, the front notes the
``client.id`` of every request, and each login, to show which clients connected and how.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["KafkaFront", "kafka_front"]

HANDSHAKE, AUTHENTICATE, API_VERSIONS = 17, 36, 18
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 33, 58


class KafkaFront:
    def __init__(self, port: int, broker_port: int, context: ssl.SSLContext | None,
                 users: dict[str, str] | None = None) -> None:
        self.port, self._broker_port, self._context, self._users = port, broker_port, context, users
        self.client_ids: set[str] = set()
        self.logins: list[tuple[str, bool]] = []  # user name, accepted
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
                                 ssl_handshake_timeout=5 if self._context else None))
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
        await asyncio.gather(self._requests(client_reader, broker_writer, client_writer),
                             _pipe(broker_reader, client_writer))

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        client: asyncio.StreamWriter) -> None:
        """Client to broker, a request at a time: size, api key, version, correlation id, client id, body."""
        logged_in = self._users is None
        try:
            while True:
                size = struct.unpack(">i", await reader.readexactly(4))[0]
                request = await reader.readexactly(size)
                api_key, version, correlation = struct.unpack(">hhi", request[:8])
                (length,) = struct.unpack(">h", request[8:10])
                if length > 0:
                    self.client_ids.add(request[10:10 + length].decode(errors="replace"))
                body = request[10 + max(length, 0):]
                if not logged_in and api_key == HANDSHAKE:
                    client.write(_handshake_answer(correlation, _string(body)))
                elif not logged_in and api_key == AUTHENTICATE:
                    logged_in = self._login(body[4:])
                    client.write(_authenticate_answer(correlation, version, logged_in))
                elif logged_in or api_key == API_VERSIONS:
                    writer.write(struct.pack(">i", size) + request)
                    await writer.drain()
                else:
                    return  # a request before logging in: a broker that requires SASL hangs up
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def _login(self, auth: bytes) -> bool:
        """SASL PLAIN: authorization id, user name and password, each after a NUL."""
        _, user, password = (auth.split(b"\0") + [b"", b""])[:3]
        accepted = self._users is not None and self._users.get(user.decode(errors="replace")) == password.decode(
            errors="replace")
        self.logins.append((user.decode(errors="replace"), accepted))
        return accepted


def _string(data: bytes) -> str:
    (length,) = struct.unpack(">h", data[:2])
    return data[2:2 + length].decode()


def _framed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def _handshake_answer(correlation: int, mechanism: str) -> bytes:
    error = 0 if mechanism == "PLAIN" else UNSUPPORTED_SASL_MECHANISM
    return _framed(struct.pack(">ihih", correlation, error, 1, 5) + b"PLAIN")


def _authenticate_answer(correlation: int, version: int, accepted: bool) -> bytes:
    message = b"" if accepted else b"Authentication failed: invalid user name or password"
    answer = struct.pack(">ih", correlation, 0 if accepted else SASL_AUTHENTICATION_FAILED)
    answer += struct.pack(">h", len(message)) + message if message else struct.pack(">h", -1)
    answer += struct.pack(">i", 0)  # no auth bytes back
    if version >= 1:
        answer += struct.pack(">q", 0)  # session lifetime: unbounded
    return _framed(answer)


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
def kafka_front(port: int, broker_port: int, context: ssl.SSLContext | None,
                users: dict[str, str] | None = None) -> Iterator[KafkaFront]:
    front = KafkaFront(port, broker_port, context, users)
    front.start()
    try:
        yield front
    finally:
        front.stop()
