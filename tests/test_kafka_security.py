"""Kafka over TLS and SASL, for real: every client of a worker and of the CLI, through the embedded broker.

What Tansu 0.6 can do was found out first (see docs/local.md, "What we found"): its own TLS
cannot be switched on (``--cert`` and ``--key`` exclude each other), so TLS is terminated by
a front in the test process (``tests/kafka_front.py``) that requires a client certificate and
notes every client.id; with ``--authentication`` it refuses every SASL login (its memory and
S3 storage keep no SCRAM credentials, and PLAIN is not built in), so a login that succeeds is
tested through the same front, answering SASL PLAIN itself.
"""

from __future__ import annotations

import os
import ssl
import subprocess
from pathlib import Path
from typing import Iterator

import orjson
import pytest
import trustme

from streams.local.stack import broker_argv, free_port, running, tierline_argv
from streams.local.workload import make_items
from tests.support import Workers
from tests.kafka_front import KafkaFront, kafka_front

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, the broker's certificate, a client certificate, and a CA that signed neither."""
    folder = tmp_path_factory.mktemp("pki")
    ca, stranger = trustme.CA(), trustme.CA()
    files = {name: folder / f"{name}.pem" for name in ("ca", "stranger", "server", "server-key", "client",
                                                          "client-key")}
    ca.cert_pem.write_to_path(files["ca"])
    stranger.cert_pem.write_to_path(files["stranger"])
    for name, cert in (("server", ca.issue_cert("127.0.0.1")), ("client", ca.issue_cert("tierline-worker"))):
        cert.cert_chain_pems[0].write_to_path(files[name])
        cert.private_key_pem.write_to_path(files[f"{name}-key"])
    return files


@pytest.fixture(scope="module")
def front(pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaFront]:
    """A broker reached only through TLS with client certificates: it advertises the front's port."""
    broker, port = free_port(), free_port()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca"]))
    context.load_cert_chain(pki["server"], pki["server-key"])
    context.verify_mode = ssl.CERT_REQUIRED
    with running(broker_argv(broker, advertised_port=port), broker,
                 log=tmp_path_factory.mktemp("tls-broker") / "broker.log"), kafka_front(port, broker, context) as tls:
        yield tls


def tls_env(pki: dict[str, Path], **changes: str) -> dict[str, str]:
    return {"TIERLINE_KAFKA_SECURITY_PROTOCOL": "SSL", "TIERLINE_KAFKA_SSL_CAFILE": str(pki["ca"]),
            "TIERLINE_KAFKA_SSL_CERTFILE": str(pki["client"]), "TIERLINE_KAFKA_SSL_KEYFILE": str(pki["client-key"]),
            **changes}


def tierline(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tierline_argv(*args), env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout)


def items_through(front: KafkaFront, security: dict[str, str], count: int, name: str, emulator_port: int,
                  s3_port: int, tmp: pytest.TempPathFactory) -> Path:
    """A worker behind ``front`` and ``tierline submit --follow`` of ``count`` items: all must succeed.
    Returns the worker's log."""
    workers = Workers(front.port, emulator_port, tmp, s3_port)
    try:
        env = workers.env(**security)
        proc = workers.start(env)
        path = tmp.mktemp(name) / "items.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(item) for item in make_items(count, name)) + b"\n")
        done = tierline(env, "submit", str(path), "--follow", "--timeout", "100")
        assert done.returncode == 0, done.stderr
        assert f"{count} succeeded" in done.stdout
        log: Path = proc.log  # type: ignore[attr-defined]
        return log
    finally:
        workers.stop_all()


def test_a_worker_and_the_cli_work_over_tls_with_a_client_certificate(  # type: ignore[no-untyped-def]
        front: KafkaFront, pki: dict[str, Path], emulator_port: int, s3_port: int, tmp_path_factory) -> None:
    items_through(front, tls_env(pki), 40, "tls", emulator_port, s3_port, tmp_path_factory)
    # Every client said who it is; the worker's roles and the CLI's are all there, through TLS.
    assert all(cid.startswith("tierline-") for cid in front.client_ids), front.client_ids
    assert {"tierline-faust", "tierline-admin", "tierline-publisher", "tierline-window", "tierline-async",
            "tierline-batch-log", "tierline-submit", "tierline-follow"} <= front.client_ids
    assert any(cid.startswith("tierline-reader-") for cid in front.client_ids)


def test_a_broker_certificate_from_another_ca_stops_the_cli_and_the_worker_saying_so(  # type: ignore[no-untyped-def]
        front: KafkaFront, pki: dict[str, Path], tmp_path: Path) -> None:
    env = {"TIERLINE_BROKER": f"kafka://127.0.0.1:{front.port}", "TIERLINE_DATA_DIR": str(tmp_path / "data"),
           **tls_env(pki, TIERLINE_KAFKA_SSL_CAFILE=str(pki["stranger"]))}
    path = tmp_path / "one.jsonl"
    path.write_bytes(orjson.dumps(make_items(1, "untrusted")[0]) + b"\n")
    for args in (("submit", str(path)), ("worker",)):
        done = tierline(env, *args)
        assert done.returncode == 1, done.stderr
        assert "the broker's TLS certificate is not trusted (" in done.stderr
        assert "TIERLINE_KAFKA_SSL_CAFILE" in done.stderr and "Traceback" not in done.stderr


def test_without_a_client_certificate_or_without_tls_the_cli_says_what_to_set(  # type: ignore[no-untyped-def]
        front: KafkaFront, pki: dict[str, Path], tmp_path: Path) -> None:
    base = {"TIERLINE_BROKER": f"kafka://127.0.0.1:{front.port}"}
    no_cert = tierline({**base, "TIERLINE_KAFKA_SECURITY_PROTOCOL": "SSL",
                        "TIERLINE_KAFKA_SSL_CAFILE": str(pki["ca"])}, "status")
    assert no_cert.returncode == 1 and "TIERLINE_KAFKA_SSL_CERTFILE" in no_cert.stderr, no_cert.stderr
    plain = tierline(base, "status")
    assert plain.returncode == 1 and "TIERLINE_KAFKA_SECURITY_PROTOCOL (now PLAINTEXT)" in plain.stderr, plain.stderr
    assert "Traceback" not in no_cert.stderr + plain.stderr


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    with running(broker_argv(port, authentication=True), port, log=tmp_path_factory.mktemp("sasl") / "broker.log"):
        yield port


def test_a_refused_sasl_login_stops_the_cli_and_the_worker_naming_the_settings(  # type: ignore[no-untyped-def]
        sasl_broker: int, tmp_path: Path) -> None:
    env = {"TIERLINE_BROKER": f"kafka://127.0.0.1:{sasl_broker}", "TIERLINE_DATA_DIR": str(tmp_path / "data"),
           "TIERLINE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "TIERLINE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
           "TIERLINE_KAFKA_SASL_USERNAME": "alice", "TIERLINE_KAFKA_SASL_PASSWORD": "not-her-password"}
    for args in (("status",), ("worker",)):
        done = tierline(env, *args)
        assert done.returncode == 1, done.stderr
        assert "the broker refused the login (SASL SCRAM-SHA-512 as alice)" in done.stderr
        assert "not-her-password" not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_tls_to_a_plaintext_listener_stops_the_cli_and_the_worker_at_once_naming_the_protocol(
        sasl_broker: int, pki: dict[str, Path], tmp_path: Path) -> None:
    """Confluent Cloud's settings against a plaintext broker: the TLS handshake would wait out the client's
    timeouts (Tansu reads the ClientHello as the size of a request); a plaintext ApiVersions says why."""
    env = {"TIERLINE_BROKER": f"kafka://127.0.0.1:{sasl_broker}", "TIERLINE_DATA_DIR": str(tmp_path / "data"),
           **sasl_env(pki)}
    for args in (("status",), ("worker",)):
        done = tierline(env, *args)
        assert done.returncode == 1, done.stderr
        assert (f"127.0.0.1:{sasl_broker} takes no TLS: it answers Kafka in plaintext. Set "
                "TIERLINE_KAFKA_SECURITY_PROTOCOL to SASL_PLAINTEXT (now SASL_SSL)") in done.stderr
        assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def sasl_front(pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaFront]:
    """SASL_SSL: TLS (no client certificate) and a PLAIN login, as Confluent Cloud asks for."""
    broker, port = free_port(), free_port()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki["server"], pki["server-key"])
    with running(broker_argv(broker, advertised_port=port), broker,
                 log=tmp_path_factory.mktemp("sasl-broker") / "broker.log"), \
            kafka_front(port, broker, context, users={"tierline-svc": "s3cret-API-key"}) as front:
        yield front


def sasl_env(pki: dict[str, Path], password: str = "s3cret-API-key") -> dict[str, str]:
    return {"TIERLINE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TIERLINE_KAFKA_SSL_CAFILE": str(pki["ca"]),
            "TIERLINE_KAFKA_SASL_MECHANISM": "PLAIN", "TIERLINE_KAFKA_SASL_USERNAME": "tierline-svc",
            "TIERLINE_KAFKA_SASL_PASSWORD": password}


def test_a_worker_and_the_cli_log_in_with_sasl_over_tls(  # type: ignore[no-untyped-def]
        sasl_front: KafkaFront, pki: dict[str, Path], emulator_port: int, s3_port: int, tmp_path_factory) -> None:
    log = items_through(sasl_front, sasl_env(pki), 20, "sasl", emulator_port, s3_port, tmp_path_factory)
    assert sasl_front.logins and all(login == ("tierline-svc", True) for login in sasl_front.logins)
    assert {"tierline-faust", "tierline-window", "tierline-submit"} <= sasl_front.client_ids
    assert "s3cret-API-key" not in log.read_text()


def test_a_wrong_password_is_refused_and_said_so(sasl_front: KafkaFront, pki: dict[str, Path]) -> None:
    done = tierline({"TIERLINE_BROKER": f"kafka://127.0.0.1:{sasl_front.port}", **sasl_env(pki, "guess")}, "status")
    assert done.returncode == 1, done.stderr
    assert "the broker refused the login (SASL PLAIN as tierline-svc)" in done.stderr
    assert "guess" not in done.stderr and "Traceback" not in done.stderr
    assert ("tierline-svc", False) in sasl_front.logins
