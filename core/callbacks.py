"""Webhook callbacks of the async tier: which URLs may be called, and how a body is signed; pure.

The signature header is ``Tierline-Signature: t=<unix seconds>,v1=<hex>``, the hex being
HMAC-SHA256 with the shared secret over ``<t>.<body>``. A receiver recomputes it and
refuses a timestamp older than its tolerance, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from urllib.parse import urlsplit

__all__ = ["SIGNATURE_HEADER", "sign", "verify", "url_refusal"]

SIGNATURE_HEADER = "Tierline-Signature"


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


def url_refusal(url: str, addresses: list[str], allow_private: bool = False) -> str | None:
    """None if ``url`` may be called, else why not. ``addresses``: what its host resolves to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme or '(none)'!r} is not http or https"
    if not parts.hostname:
        return "no host"
    if not addresses:
        return f"host {parts.hostname!r} does not resolve"
    if allow_private:
        return None
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_unspecified or ip.is_multicast \
                or ip.is_reserved:
            return f"host {parts.hostname!r} is at {address}, a loopback, link-local or private address"
    return None
