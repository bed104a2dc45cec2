"""Webhook callbacks of the async tier: which URLs may be called, and how a body is signed; pure.

Callbacks are signed per Standard Webhooks (``standard_headers``): ``webhook-id`` (the same for
every delivery of an item's result, to deduplicate on), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``, ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`` once per secret, so
a receiver holding either the old or the new secret verifies while they are rotated.

The older header, ``Tierline-Signature: t=<unix seconds>,v1=<hex>`` (HMAC-SHA256 with the shared
secret over ``<t>.<body>``), is still sent while ``TIERLINE_CALLBACK_SECRET`` is set (``sign``).
A receiver refuses a timestamp older than its tolerance, so a captured request cannot be replayed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from datetime import datetime, timezone
from urllib.parse import urlsplit

from standardwebhooks import Webhook

__all__ = ["SIGNATURE_HEADER", "address_refusal", "parse_secrets", "sign", "standard_headers", "verify",
           "url_refusal", "webhook_id"]

SIGNATURE_HEADER = "Tierline-Signature"
#: Standard Webhooks: secrets of 24 to 64 random bytes, base64, optionally after ``whsec_``.
SECRET_PREFIX = "whsec_"


def parse_secrets(raw: str) -> list[str]:
    """The comma-separated secrets of ``TIERLINE_CALLBACK_SECRETS``; ValueError saying which one is wrong."""
    secrets = [part.strip() for part in raw.split(",") if part.strip()]
    for index, secret in enumerate(secrets, 1):
        try:
            key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"secret {index} is not base64 (whsec_ followed by base64, as "
                             "`openssl rand -base64 32` makes)") from None
        if not 24 <= len(key) <= 64:
            raise ValueError(f"secret {index} is {len(key)} bytes: Standard Webhooks secrets are 24 to 64")
    return secrets


def webhook_id(run_key: str | tuple[str, str]) -> str:
    """The ``webhook-id`` of an item's result: the same for every delivery of it, another for a re-run."""
    text = run_key if isinstance(run_key, str) else "\x00".join(run_key)
    return "msg_" + hashlib.sha256(text.encode()).hexdigest()[:32]


def standard_headers(secrets: list[str], message_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The Standard Webhooks headers of one delivery, signed with every secret."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    text = body.decode()
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(Webhook(secret).sign(message_id, moment, text) for secret in secrets)}


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, header: str, body: bytes, now: float, tolerance_s: float = 300.0) -> str | None:
    """None if the header signs ``body`` with ``secret`` recently enough, else what is wrong."""
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (ValueError, KeyError):
        return "malformed signature header"
    if abs(now - timestamp) > tolerance_s:
        return f"timestamp {timestamp} is more than {tolerance_s:g} s from now"
    if not hmac.compare_digest(sign(secret, body, timestamp).split("v1=")[1], given):
        return "signature does not match"
    return None


def url_refusal(url: str, allow_private: bool = False) -> str | None:
    """None if ``url`` may be called, as far as the URL itself says, else why not. A host given as a name
    is checked where it is resolved, at connect time (``streams.callbacks.CheckedResolver``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme or '(none)'!r} is not http or https"
    if not parts.hostname:
        return "no host"
    try:
        ipaddress.ip_address(parts.hostname.split("%", 1)[0])
    except ValueError:
        return None  # a name
    if not allow_private and (refused := address_refusal(parts.hostname)) is not None:
        return f"host {parts.hostname} is {refused}"
    return None


def address_refusal(address: str) -> str | None:
    """None if a callback may connect to ``address``, else what kind of address it is.

    Only globally routable unicast addresses pass: not loopback, private, link-local, carrier-grade
    NAT (100.64.0.0/10), multicast, reserved, documentation or benchmarking space, and not one of
    those inside an IPv6 address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``).
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) names no other host
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and (inner := ip.ipv4_mapped or ip.sixtofour) is not None:
        ip = inner
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_link_local:
        return "a link-local address"
    if ip in _SHARED:
        return "a carrier-grade NAT address (100.64.0.0/10)"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a reserved address"
    return None


_SHARED = ipaddress.ip_network("100.64.0.0/10")
