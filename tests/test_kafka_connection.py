"""How tierline's Kafka clients connect (TLS, SASL, MSK IAM), and what a failure to connect is said to mean."""

from __future__ import annotations

import asyncio
import base64
import http.server
import ssl
import struct
import threading
from pathlib import Path
from typing import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlparse

import faust
import pytest
import trustme
from aiohttp import web
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

from streams.kafka.connection import ConnectionSettingsError, KafkaConnection, MskIamTokens
from streams.kafka.diagnose import explain, probe
from streams.local.stack import free_port
from streams.settings import Settings, SettingsError


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pem(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    client = ca.issue_cert("tierline-worker")
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    ca.cert_pem.write_to_path(files["ca"])
    client.cert_chain_pems[0].write_to_path(files["cert"])
    client.private_key_pem.write_to_path(files["key"])
    return {name: str(path) for name, path in files.items()}


def test_plaintext_is_the_default_and_each_client_names_its_role() -> None:
    options = Settings.from_env({"TIERLINE_BROKER": "kafka://a:9092,kafka://b:9092"}).kafka.options("publisher")
    assert options == {"bootstrap_servers": "a:9092,b:9092", "client_id": "tierline-publisher",
                       "security_protocol": "PLAINTEXT"}


def test_sasl_over_tls_carries_the_login_and_a_context_that_checks_the_broker(pem: dict[str, str]) -> None:
    kafka = Settings.from_env({"TIERLINE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                               "TIERLINE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "TIERLINE_KAFKA_SASL_USERNAME": "u",
                               "TIERLINE_KAFKA_SASL_PASSWORD": "hunter2", "TIERLINE_KAFKA_SSL_CAFILE": pem["ca"]}).kafka
    options = kafka.options("admin")
    assert (options["security_protocol"], options["sasl_mechanism"], options["sasl_plain_username"],
            options["sasl_plain_password"]) == ("SASL_SSL", "SCRAM-SHA-512", "u", "hunter2")
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert "hunter2" not in repr(kafka)  # the password stays out of reprs, and so out of logs and tracebacks
    credentials = kafka.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials) and credentials.ssl_context is context
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-512"


def test_tls_alone_is_faust_ssl_credentials_with_the_client_certificate(pem: dict[str, str]) -> None:
    kafka = KafkaConnection("b:9093", "SSL", ssl_cafile=pem["ca"], ssl_certfile=pem["cert"], ssl_keyfile=pem["key"])
    kafka.check()
    assert isinstance(kafka.faust_credentials(), faust.SSLCredentials)
    assert KafkaConnection("b:9092").faust_credentials() is None


@pytest.mark.parametrize(("env", "says"), [
    ({"TIERLINE_KAFKA_SECURITY_PROTOCOL": "TLS"}, "TIERLINE_KAFKA_SECURITY_PROTOCOL must be one of"),
    ({"TIERLINE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TIERLINE_KAFKA_SASL_MECHANISM": "GSSAPI"},
     "TIERLINE_KAFKA_SASL_MECHANISM must be one of"),
    ({"TIERLINE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs TIERLINE_KAFKA_SASL_USERNAME and"),
    ({"TIERLINE_KAFKA_SECURITY_PROTOCOL": "SSL", "TIERLINE_KAFKA_SSL_CAFILE": "/nowhere/ca.pem"},
     "TIERLINE_KAFKA_SSL_CAFILE: no file at /nowhere/ca.pem"),
])
def test_a_setting_that_cannot_work_is_named_before_anything_connects(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env(env)


def test_a_client_certificate_needs_its_key_and_files_must_be_pem(pem: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConnectionSettingsError, match="go together"):
        KafkaConnection("b:9093", "SSL", ssl_certfile=pem["cert"]).check()
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConnectionSettingsError, match="cannot be used"):
        KafkaConnection("b:9093", "SSL", ssl_cafile=str(junk)).check()


async def test_msk_iam_tokens_are_signed_locally_with_the_workers_aws_credentials(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    kafka = KafkaConnection("b-1.msk:9098", "SASL_SSL", "OAUTHBEARER")
    kafka.check()
    provider = kafka.options("worker")["sasl_oauth_token_provider"]
    assert isinstance(provider, MskIamTokens)
    token = await provider.token()
    url = urlparse(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    query = parse_qs(url.query)
    assert url.hostname == "kafka.eu-west-1.amazonaws.com" and query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIAEXAMPLE/")
    assert isinstance(kafka.faust_credentials(), faust.OAuthCredentials)


async def test_a_refused_login_is_said_to_be_one_naming_the_settings() -> None:
    kafka = KafkaConnection("b:9092", "SASL_PLAINTEXT", "SCRAM-SHA-256", "alice", "wrong")
    for refusal in (SaslAuthenticationFailed("bad"), KeyError("v")):  # the second: aiokafka reading Tansu's "e="
        said = await explain(kafka, refusal)
        assert "refused the login (SASL SCRAM-SHA-256 as alice)" in said and "TIERLINE_KAFKA_SASL_PASSWORD" in said
        assert "wrong" not in said


async def test_nothing_listening_is_said_plainly() -> None:
    port = free_port()
    said = await explain(KafkaConnection(f"127.0.0.1:{port}"), KafkaConnectionError("Unable to bootstrap"))
    assert said.startswith(f"nothing answers at 127.0.0.1:{port}") and "TIERLINE_BROKER" in said


async def test_a_broker_certificate_from_another_ca_is_said_to_be_untrusted(ca: trustme.CA, tmp_path: Path) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    listening = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=server)
    port = listening.sockets[0].getsockname()[1]
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(other)
    try:
        said = await explain(KafkaConnection(f"127.0.0.1:{port}", "SSL", ssl_cafile=str(other)),
                             KafkaConnectionError("Unable to bootstrap"))
        assert "TLS certificate is not trusted (unable to get local issuer certificate)" in said
        assert "TIERLINE_KAFKA_SSL_CAFILE" in said
        plain = await explain(KafkaConnection(f"127.0.0.1:{port}"), KafkaConnectionError("Unable to bootstrap"))
        assert "TIERLINE_KAFKA_SECURITY_PROTOCOL (now PLAINTEXT)" in plain
    finally:
        listening.close()


async def answer_as_kafka(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The first bytes of a broker's answer to ApiVersions: a size, then the request's correlation id."""
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    correlation = struct.unpack_from(">hhi", await reader.readexactly(size))[2]
    writer.write(struct.pack(">iih", 6, correlation, 0))
    await writer.drain()
    writer.close()


@pytest.fixture
async def kafka_like() -> AsyncIterator[int]:
    server = await asyncio.start_server(answer_as_kafka, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest.fixture
async def http_port() -> AsyncIterator[int]:
    """An HTTP server that answers a request it cannot read at once, as aiohttp (and most) do."""
    runner = web.AppRunner(web.Application())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await runner.cleanup()


@pytest.fixture
def quiet_http_port() -> Iterator[int]:
    """Python's own HTTP server: it waits for the end of a request line, which a Kafka request never has."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


async def test_a_kafka_answer_passes_and_one_good_server_of_several_is_enough(kafka_like: int) -> None:
    assert await probe(KafkaConnection(f"127.0.0.1:{kafka_like}")) is None
    assert await probe(KafkaConnection(f"no-such-host.invalid:9092,127.0.0.1:{kafka_like}")) is None


async def test_a_name_that_does_not_resolve_is_said_at_once_not_waited_for() -> None:
    found = await probe(KafkaConnection("no-such-host.invalid:9092"))
    assert found is not None and not found.away
    assert "the name no-such-host.invalid does not resolve" in found.reason and "TIERLINE_BROKER" in found.reason


async def test_a_port_that_speaks_http_is_said_to(http_port: int, quiet_http_port: int) -> None:
    for port in (http_port, quiet_http_port):
        found = await probe(KafkaConnection(f"127.0.0.1:{port}"), timeout=1)
        assert found is not None and not found.away, port
        assert found.reason.startswith(f"127.0.0.1:{port} answers HTTP, not Kafka"), found.reason


async def test_nothing_listening_is_left_to_wait_for(kafka_like: int) -> None:
    port = free_port()
    found = await probe(KafkaConnection(f"127.0.0.1:{port}"))
    assert found is not None and found.away  # a broker restarting: submit waits for it
    quiet = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    try:
        found = await probe(KafkaConnection(f"127.0.0.1:{quiet.sockets[0].getsockname()[1]}"), timeout=0.5)
        assert found is not None and found.away and "gave no answer to a Kafka request" in found.reason
    finally:
        quiet.close()


async def test_tls_to_a_plaintext_listener_is_said_with_the_protocol_to_set(kafka_like: int,
                                                                           pem: dict[str, str]) -> None:
    for protocol, instead in (("SSL", "PLAINTEXT"), ("SASL_SSL", "SASL_PLAINTEXT")):
        kafka = KafkaConnection(f"127.0.0.1:{kafka_like}", protocol, "PLAIN", "alice", "secret", ssl_cafile=pem["ca"])
        found = await probe(kafka, timeout=1)
        assert found is not None and not found.away
        assert f"takes no TLS: it answers Kafka in plaintext. Set TIERLINE_KAFKA_SECURITY_PROTOCOL to {instead}" in (
            found.reason)


async def test_a_failure_past_the_probe_is_said_of_the_server_that_answers(kafka_like: int) -> None:
    down = free_port()
    said = await explain(KafkaConnection(f"127.0.0.1:{down},127.0.0.1:{kafka_like}"),
                         KafkaConnectionError("Unable to bootstrap"))
    assert said.startswith(f"127.0.0.1:{kafka_like} answers Kafka requests"), said
