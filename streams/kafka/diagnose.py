"""Why a Kafka client could not connect, said as the setting to look at (``explain``, ``diagnose``), and the
same found before connecting, in seconds (``probe``)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from typing import NamedTuple

from aiokafka.conn import create_conn
from aiokafka.errors import (AuthenticationFailedError, AuthenticationMethodNotSupported, IllegalSaslStateError,
                             KafkaError, SaslAuthenticationFailed, UnsupportedSaslMechanismError)

from streams.kafka.connection import KafkaConnection

__all__ = ["Diagnosis", "diagnose", "explain", "probe"]


class Diagnosis(NamedTuple):
    """Why a client could not reach Kafka, in words that say which setting to look at."""

    reason: str
    #: Nothing answers at the address: the broker may be down for a while, not wrongly set.
    away: bool = False


async def explain(kafka: KafkaConnection, exc: BaseException) -> str:
    """What a failure to reach Kafka means: ``diagnose``'s reason."""
    return (await diagnose(kafka, exc)).reason


async def diagnose(kafka: KafkaConnection, exc: BaseException) -> Diagnosis:
    """What a failure to reach Kafka means.

    aiokafka reports most such failures as "Unable to bootstrap", the cause only in its own
    log; so the bootstrap servers are probed once more (``probe``) to find out which step fails,
    and then the login.
    """
    if isinstance(exc, (AuthenticationFailedError, SaslAuthenticationFailed, IllegalSaslStateError)) or (
            kafka.uses_sasl and isinstance(exc, KeyError)):  # aiokafka's SCRAM reads a refusal ("e=...") so
        return Diagnosis(_refused_login(kafka))
    if isinstance(exc, (UnsupportedSaslMechanismError, AuthenticationMethodNotSupported)):
        return Diagnosis(_no_mechanism(kafka))
    if not isinstance(exc, (KafkaError, OSError)):
        return Diagnosis(f"{type(exc).__name__}: {exc}")
    found, answering = await _probe_servers(kafka, timeout=10)
    if answering is None:
        assert found is not None
        return found
    host, port = answering
    if kafka.uses_sasl:  # it answers as Kafka: the login is what failed, and aiokafka's bootstrap hid why
        options = kafka.options("probe")
        del options["bootstrap_servers"]
        try:
            connection = await create_conn(host, port, request_timeout_ms=10_000, **options)
        except Exception as failed:  # noqa: BLE001 - each way a login fails has its sentence
            if isinstance(failed, (SaslAuthenticationFailed, AuthenticationFailedError, IllegalSaslStateError,
                                   KeyError)):
                return Diagnosis(_refused_login(kafka))
            if isinstance(failed, (UnsupportedSaslMechanismError, AuthenticationMethodNotSupported)):
                return Diagnosis(_no_mechanism(kafka))
        else:
            connection.close()
    return Diagnosis(f"{host}:{port} answers Kafka requests, yet the client failed: {type(exc).__name__}: {exc}")


async def probe(kafka: KafkaConnection, timeout: float = 5.0) -> Diagnosis | None:
    """Whether a bootstrap server answers as a Kafka broker, over the security protocol set: ``None`` when one
    does, else why not, found within seconds where a client would wait out its timeouts first (a name that
    does not resolve, a port that speaks HTTP, TLS to a plaintext listener). Logins are not tried."""
    return (await _probe_servers(kafka, timeout))[0]


async def _probe_servers(kafka: KafkaConnection, timeout: float) -> tuple[Diagnosis | None, tuple[str, int] | None]:
    """``probe``'s answer, and the first server that answers as Kafka (the one to try a login on), if any."""
    found = []
    for server in _servers(kafka):
        diagnosis = await _probe_server(kafka, *server, timeout)
        if diagnosis is None:
            return None, server
        found.append(diagnosis)
    return next((diagnosis for diagnosis in found if diagnosis.away), found[0]), None


def _servers(kafka: KafkaConnection) -> list[tuple[str, int]]:
    servers = []
    for server in kafka.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        servers.append((host.strip("[]"), int(port)))
    return servers


async def _probe_server(kafka: KafkaConnection, host: str, port: int, timeout: float) -> Diagnosis | None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except socket.gaierror as unknown:
        if unknown.errno == socket.EAI_AGAIN:  # the resolver itself is away: it may be back in a moment
            return Diagnosis(f"the name {host} cannot be looked up now ({unknown.strerror}): is DNS up?", away=True)
        return Diagnosis(f"the name {host} does not resolve ({unknown.strerror}): is TIERLINE_BROKER (or -b) right?")
    except (OSError, asyncio.TimeoutError) as refused:
        return Diagnosis(f"nothing answers at {host}:{port} ({refused or 'timed out'}): is the broker up, and "
                         "TIERLINE_BROKER right?", away=True)
    try:
        if kafka.uses_tls:
            try:
                await asyncio.wait_for(writer.start_tls(kafka.ssl_context, server_hostname=host), timeout)
            except ssl.SSLCertVerificationError as bad:
                return Diagnosis(f"the broker's TLS certificate is not trusted ({bad.verify_message}): give its CA "
                                 "in TIERLINE_KAFKA_SSL_CAFILE")
            except (ssl.SSLError, OSError, asyncio.TimeoutError) as failed:
                if await _answers_in_plaintext(host, port, timeout):
                    return Diagnosis(
                        f"{host}:{port} takes no TLS: it answers Kafka in plaintext. Set "
                        f"TIERLINE_KAFKA_SECURITY_PROTOCOL to {kafka.security_protocol.replace('SSL', 'PLAINTEXT')} "
                        f"(now {kafka.security_protocol}), or give the address of the broker's TLS listener")
                return Diagnosis(f"the TLS handshake with {host}:{port} failed ({failed or 'timed out'}): does it "
                                 "take TLS there?")
        head = await _api_versions(reader, writer, timeout)
    except ssl.SSLError as refused:  # TLS 1.3: a missing client certificate is refused after the handshake
        return Diagnosis(f"the broker refused the TLS connection ({refused.reason or refused}): if it wants a "
                         "client certificate, set TIERLINE_KAFKA_SSL_CERTFILE and TIERLINE_KAFKA_SSL_KEYFILE")
    finally:
        writer.close()
    if head is None:  # it kept quiet: an HTTP server waits for the end of a request line that never comes
        if not kafka.uses_tls and await _answers_http(host, port, timeout):
            return Diagnosis(_HTTP.format(where=f"{host}:{port}"))
        return Diagnosis(f"{host}:{port} took the connection but gave no answer to a Kafka request within "
                         f"{timeout:g} s: is it a Kafka listener, and not overloaded?", away=True)
    return _answer(kafka, host, port, head)


async def _api_versions(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> bytes | None:
    """The first 8 bytes of the answer to an ApiVersions request: fewer if the other end closed first, ``None``
    if it kept quiet for ``timeout``."""
    return await _ask(reader, writer, _API_VERSIONS, 8, timeout)


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, size: int,
               timeout: float) -> bytes | None:
    writer.write(request)
    try:
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(size), timeout)
    except asyncio.IncompleteReadError as short:
        return short.partial
    except asyncio.TimeoutError:
        return None
    except ssl.SSLError:
        raise
    except OSError:
        return b""


async def _ask_anew(host: str, port: int, request: bytes, size: int, timeout: float) -> bytes:
    """``_ask`` in plaintext on a connection of its own; nothing (``b""``) if none is made or nothing comes."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return b""
    try:
        return await _ask(reader, writer, request, size, timeout) or b""
    finally:
        writer.close()


async def _answers_http(host: str, port: int, timeout: float) -> bool:
    request = f"HEAD / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()
    return await _ask_anew(host, port, request, 5, timeout) == b"HTTP/"


async def _answers_in_plaintext(host: str, port: int, timeout: float) -> bool:
    return _is_kafka(await _ask_anew(host, port, _API_VERSIONS, 8, timeout))


def _is_kafka(head: bytes) -> bool:
    """A Kafka answer: its size, then the request's correlation id (1)."""
    if len(head) != 8:
        return False
    size, correlation = struct.unpack(">ii", head)
    return bool(correlation == 1 and 0 < size < 1 << 24)


def _answer(kafka: KafkaConnection, host: str, port: int, head: bytes) -> Diagnosis | None:
    """What the answer to ApiVersions says of what listens at ``host:port``."""
    if _is_kafka(head):
        return None
    if not head and kafka.security_protocol == "SSL" and not kafka.ssl_certfile:
        return Diagnosis(
            f"{host}:{port} closed the TLS connection without an answer: if it wants a client certificate, set "
            "TIERLINE_KAFKA_SSL_CERTFILE and TIERLINE_KAFKA_SSL_KEYFILE; if it wants a SASL login, "
            "TIERLINE_KAFKA_SECURITY_PROTOCOL=SASL_SSL and the TIERLINE_KAFKA_SASL_* settings")
    if not head:
        return Diagnosis(
            f"{host}:{port} closed the connection without an answer: if it requires TLS or SASL, set "
            f"TIERLINE_KAFKA_SECURITY_PROTOCOL (now {kafka.security_protocol}) and the settings that go with it")
    if head.startswith(b"HTTP/"):
        return Diagnosis(_HTTP.format(where=f"{host}:{port}"))
    return Diagnosis(f"{host}:{port} answers, but not as Kafka does ({head!r}): is the port in TIERLINE_BROKER "
                     "(or -b) a Kafka listener's?")


_HTTP = "{where} answers HTTP, not Kafka: is the port in TIERLINE_BROKER (or -b) a Kafka listener's?"


def _refused_login(kafka: KafkaConnection) -> str:
    return (f"the broker refused the login (SASL {kafka.sasl_mechanism} as {kafka.sasl_username or '(no user)'}): "
            "check TIERLINE_KAFKA_SASL_USERNAME, TIERLINE_KAFKA_SASL_PASSWORD and TIERLINE_KAFKA_SASL_MECHANISM")


def _no_mechanism(kafka: KafkaConnection) -> str:
    return f"the broker does not offer {kafka.sasl_mechanism}: set TIERLINE_KAFKA_SASL_MECHANISM to one it does"


def _api_versions_request() -> bytes:
    """ApiVersions (key 18, version 0, correlation id 1): what any Kafka broker answers before a login."""
    client_id = b"tierline-probe"
    header = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    return struct.pack(">i", len(header)) + header


_API_VERSIONS = _api_versions_request()
