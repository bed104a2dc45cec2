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

__all__ = ["SIGNATURE_HEADER", "address_refusal", "sign", "verify", "url_refusal"]

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
