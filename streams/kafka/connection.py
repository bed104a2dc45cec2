"""How tierline's Kafka clients connect: TLS, SASL and a ``client.id`` naming each one's role.

Every client tierline makes (the Faust app, the publisher, the group consumers, the
topic readers, the admin client, the CLI's readers and producers) is built from one
``KafkaConnection``, read from the ``TIERLINE_KAFKA_*`` settings, so a managed Kafka
(Confluent Cloud, Amazon MSK, Aiven, Redpanda Cloud) is reached the same way by all of
them. ``OAUTHBEARER`` is Amazon MSK's IAM auth: tokens signed locally with the worker's
own AWS credentials by AWS's ``aws-msk-iam-sasl-signer-python`` (the ``msk`` extra).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from aiokafka.abc import AbstractTokenProvider
from aiokafka.helpers import create_ssl_context

__all__ = ["KafkaConnection", "ConnectionSettingsError", "MskIamTokens", "PROTOCOLS", "MECHANISMS"]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: A record batch's framing beyond its records; with the default record limit, Kafka's own 1,048,588.
MESSAGE_HEADROOM = 48_588
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


class ConnectionSettingsError(ValueError):
    """A ``TIERLINE_KAFKA_*`` setting that cannot work, saying which and why."""


@dataclass(frozen=True)
class KafkaConnection:
    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    max_record_bytes: int = 1_000_000  # the largest record, and record batch, a producer sends

    @property
    def max_message_bytes(self) -> int:
        """The ``max.message.bytes`` topics need for that: what tierline creates them with and checks."""
        return self.max_record_bytes + MESSAGE_HEADROOM

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def check(self) -> None:
        """Say what is wrong before any client tries, naming the setting to fix."""
        if self.security_protocol not in PROTOCOLS:
            raise ConnectionSettingsError(f"TIERLINE_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, "
                                          f"not {self.security_protocol!r}")
        if self.uses_sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise ConnectionSettingsError(f"TIERLINE_KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}, "
                                              f"not {self.sasl_mechanism!r}")
            if self.sasl_mechanism == "OAUTHBEARER":
                try:
                    import aws_msk_iam_sasl_signer  # noqa: F401
                except ImportError:
                    raise ConnectionSettingsError(
                        "TIERLINE_KAFKA_SASL_MECHANISM=OAUTHBEARER signs Amazon MSK IAM tokens with "
                        "aws-msk-iam-sasl-signer-python: pip install 'tierline[msk]'") from None
            elif not (self.sasl_username and self.sasl_password):
                raise ConnectionSettingsError(f"SASL {self.sasl_mechanism} needs TIERLINE_KAFKA_SASL_USERNAME and "
                                              "TIERLINE_KAFKA_SASL_PASSWORD")
        if self.uses_tls:
            for name, path in (("CAFILE", self.ssl_cafile), ("CERTFILE", self.ssl_certfile),
                               ("KEYFILE", self.ssl_keyfile)):
                if path and not os.path.isfile(path):
                    raise ConnectionSettingsError(f"TIERLINE_KAFKA_SSL_{name}: no file at {path}")
            if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
                raise ConnectionSettingsError("TIERLINE_KAFKA_SSL_CERTFILE and TIERLINE_KAFKA_SSL_KEYFILE go together: "
                                              "a client certificate and its private key")
            try:
                _ = self.ssl_context  # made now: a file that is no PEM is said here
            except (ssl.SSLError, OSError) as exc:
                raise ConnectionSettingsError(f"TIERLINE_KAFKA_SSL_*: the files cannot be used: {exc}") from None

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the brokers' certificates and host names (against the CA file, or the system's CAs)."""
        context: ssl.SSLContext = create_ssl_context(cafile=self.ssl_cafile or None, certfile=self.ssl_certfile or None,
                                                     keyfile=self.ssl_keyfile or None)
        return context

    def options(self, role: str) -> dict[str, Any]:
        """Keyword arguments of an aiokafka producer, consumer or admin client playing ``role``."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers, "client_id": f"tierline-{role}",
                                   "security_protocol": self.security_protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context
        if self.uses_sasl:
            options["sasl_mechanism"] = self.sasl_mechanism
            if self.sasl_mechanism == "OAUTHBEARER":
                options["sasl_oauth_token_provider"] = MskIamTokens()
            else:
                options["sasl_plain_username"] = self.sasl_username
                options["sasl_plain_password"] = self.sasl_password
        return options

    def faust_credentials(self) -> Any:
        """The same, as the Faust app's ``broker_credentials`` (None: plaintext)."""
        import faust

        tls = self.ssl_context if self.uses_tls else None
        if self.uses_sasl and self.sasl_mechanism == "OAUTHBEARER":
            return faust.OAuthCredentials(oauth_cb=MskIamTokens(), ssl_context=tls)
        if self.uses_sasl:
            return faust.SASLCredentials(username=self.sasl_username, password=self.sasl_password,
                                         mechanism=self.sasl_mechanism, ssl_context=tls)
        return faust.SSLCredentials(tls) if tls is not None else None


class MskIamTokens(AbstractTokenProvider):  # type: ignore[misc]
    """Amazon MSK IAM auth tokens for OAUTHBEARER, from boto3's credentials and region (``AWS_REGION``)."""

    def __init__(self, region: str | None = None) -> None:
        self._region = region

    async def token(self) -> str:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        region = self._region or _aws_region()
        token, _expires_ms = await asyncio.to_thread(MSKAuthTokenProvider.generate_auth_token, region)
        return str(token)


def _aws_region() -> str:
    import boto3

    region = os.environ.get("AWS_REGION") or boto3.session.Session().region_name  # the latter: AWS_DEFAULT_REGION
    if not region:
        raise ConnectionSettingsError("Amazon MSK IAM auth needs the cluster's region: set AWS_REGION")
    return str(region)
