"""Webhook signing and the URLs callbacks may go to."""

from __future__ import annotations

from core.callbacks import sign, url_refusal, verify

SECRET = b"shared-secret"
BODY = b'{"custom_id":"report-17","tier":"async"}'


def test_a_signed_body_verifies_and_a_changed_or_old_one_does_not() -> None:
    header = sign(SECRET, BODY, 1_800_000_000)
    assert header.startswith("t=1800000000,v1=")
    assert verify(SECRET, header, BODY, now=1_800_000_010) is None
    assert verify(SECRET, header, BODY + b" ", now=1_800_000_010) == "signature does not match"
    assert verify(b"other", header, BODY, now=1_800_000_010) == "signature does not match"
    assert "more than 300 s" in verify(SECRET, header, BODY, now=1_800_000_400)  # a replay, later
    assert verify(SECRET, "v1=abc", BODY, now=0) == "malformed signature header"


def test_only_public_http_urls_unless_private_ones_are_allowed() -> None:
    assert url_refusal("https://hooks.example.com/done", ["93.184.216.34"]) is None
    assert "not http or https" in url_refusal("file:///etc/passwd", ["127.0.0.1"])
    assert "not http or https" in url_refusal("gopher://example.com/", ["93.184.216.34"])
    for address in ("127.0.0.1", "::1", "169.254.169.254", "10.0.0.5", "192.168.1.2", "fd00::1", "0.0.0.0"):
        assert "private address" in url_refusal("http://internal/", [address]), address
    # One private address among public ones is enough to refuse (DNS can answer either).
    assert url_refusal("https://mixed.example/", ["93.184.216.34", "10.1.1.1"]) is not None
    assert url_refusal("http://127.0.0.1:8080/hook", ["127.0.0.1"], allow_private=True) is None
    assert url_refusal("https://nowhere.invalid/", []) == "host 'nowhere.invalid' does not resolve"
