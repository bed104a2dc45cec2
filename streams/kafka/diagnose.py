"""Why a Kafka client could not connect, said as the setting to look at (``explain``, ``diagnose``)."""

from __future__ import annotations

import asyncio
import ssl
import struct
from typing import NamedTuple

from aiokafka.conn import create_conn
from aiokafka.errors import (AuthenticationFailedError, AuthenticationMethodNotSupported, IllegalSaslStateError,
                             KafkaError, SaslAuthenticationFailed, UnsupportedSaslMechanismError)

from streams.kafka.connection import KafkaConnection

__all__ = ["Diagnosis", "diagnose", "explain"]


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
    log; so the first bootstrap server is tried here once more, a TCP connection and then
    the TLS handshake, to find out which of them fails.
    """
    if isinstance(exc, (AuthenticationFailedError, SaslAuthenticationFailed, IllegalSaslStateError)) or (
            kafka.uses_sasl and isinstance(exc, KeyError)):  # aiokafka's SCRAM reads a refusal ("e=...") so
        return Diagnosis(_refused_login(kafka))
    if isinstance(exc, (UnsupportedSaslMechanismError, AuthenticationMethodNotSupported)):
        return Diagnosis(_no_mechanism(kafka))
    if not isinstance(exc, (KafkaError, OSError)):
        return Diagnosis(f"{type(exc).__name__}: {exc}")
    host, _, port = kafka.bootstrap_servers.split(",")[0].rpartition(":")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 10)
    except (OSError, ValueError, asyncio.TimeoutError) as refused:
        return Diagnosis(f"nothing answers at {host}:{port} ({refused or 'timed out'}): is the broker up, and "
                         "TIERLINE_BROKER right?", away=True)
    return Diagnosis(await _past_connect(kafka, exc, host, int(port), reader, writer))


async def _past_connect(kafka: KafkaConnection, exc: BaseException, host: str, port: int,
                        reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    """Something listens: whether it is TLS, Kafka, and a login, that fails."""
    try:
        if kafka.uses_tls:
            try:
                await asyncio.wait_for(writer.start_tls(kafka.ssl_context, server_hostname=host), 10)
            except ssl.SSLCertVerificationError as bad:
                return (f"the broker's TLS certificate is not trusted ({bad.verify_message}): give its CA in "
                        "TIERLINE_KAFKA_SSL_CAFILE")
            except (ssl.SSLError, OSError, asyncio.TimeoutError) as failed:
                return f"the TLS handshake with {host}:{port} failed ({failed or 'timed out'}): does it take TLS there?"
        writer.write(_API_VERSIONS)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(4), 10)
    except ssl.SSLError as refused:  # TLS 1.3: a missing client certificate is refused after the handshake
        return (f"the broker refused the TLS connection ({refused.reason or refused}): if it wants a client "
                "certificate, set TIERLINE_KAFKA_SSL_CERTFILE and TIERLINE_KAFKA_SSL_KEYFILE")
    except (OSError, asyncio.TimeoutError):
        answer = b""
    finally:
        writer.close()
    if not answer and kafka.security_protocol == "SSL" and not kafka.ssl_certfile:
        return (f"{host}:{port} closed the TLS connection without an answer: if it wants a client certificate, set "
                "TIERLINE_KAFKA_SSL_CERTFILE and TIERLINE_KAFKA_SSL_KEYFILE; if it wants a SASL login, "
                "TIERLINE_KAFKA_SECURITY_PROTOCOL=SASL_SSL and the TIERLINE_KAFKA_SASL_* settings")
    if not answer:
        return (f"{host}:{port} closed the connection without an answer: if it requires TLS or SASL, set "
                f"TIERLINE_KAFKA_SECURITY_PROTOCOL (now {kafka.security_protocol}) and the settings that go with it")
    if kafka.uses_sasl:  # it answers: the login is what failed, and aiokafka's bootstrap hid why
        options = kafka.options("probe")
        del options["bootstrap_servers"]
        try:
            connection = await create_conn(host, port, request_timeout_ms=10_000, **options)
        except Exception as failed:  # noqa: BLE001 - each way a login fails has its sentence
            if isinstance(failed, (SaslAuthenticationFailed, AuthenticationFailedError, IllegalSaslStateError,
                                   KeyError)):
                return _refused_login(kafka)
            if isinstance(failed, (UnsupportedSaslMechanismError, AuthenticationMethodNotSupported)):
                return _no_mechanism(kafka)
        else:
            connection.close()
    return f"{host}:{port} answers Kafka requests, yet the client failed: {type(exc).__name__}: {exc}"


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
