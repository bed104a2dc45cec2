"""Webhook signing and the URLs callbacks may go to."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import orjson
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from core.callbacks import address_refusal, parse_secrets, sign, standard_headers, url_refusal, verify, webhook_id

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


def test_only_http_urls_and_no_literal_address_that_is_not_public_unless_allowed() -> None:
    assert url_refusal("https://hooks.example.com/done") is None  # a name: checked where it is resolved
    assert url_refusal("https://93.184.216.34/done") is None
    assert "not http or https" in url_refusal("file:///etc/passwd")
    assert "not http or https" in url_refusal("gopher://example.com/")
    for url in ("http://127.0.0.1/", "http://[::1]:8080/", "http://169.254.169.254/latest/meta-data/",
                "http://10.0.0.5/", "http://[::ffff:10.0.0.5]/", "http://100.64.1.1/", "http://0.0.0.0/"):
        assert "host" in url_refusal(url), url
    assert url_refusal("http://127.0.0.1:8080/hook", allow_private=True) is None


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.0.0.5", "private"), ("172.16.4.4", "private"), ("192.168.1.2", "private"), ("fd12:3456::1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1%eth0", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"), ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.251", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "private"), ("240.0.0.1", "reserved"), ("192.0.2.10", "private"), ("198.18.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"), ("::ffff:169.254.169.254", "link-local"),
    ("2002:7f00:1::", "loopback"), ("2002:a00:1::", "private"),
])
def test_every_form_of_a_non_public_address_is_refused_and_said_what_it_is(address: str, kind: str) -> None:
    refused = address_refusal(address)
    assert refused is not None and kind in refused


def test_public_addresses_pass_in_both_families() -> None:
    for address in ("93.184.216.34", "100.128.0.1", "2606:4700:4700::1111", "::ffff:93.184.216.34"):
        assert address_refusal(address) is None, address


OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"n" * 24).decode()


def test_standard_webhooks_headers_verify_with_the_old_or_the_new_secret_while_they_are_rotated() -> None:
    now = int(time.time())
    headers = standard_headers([OLD_SECRET, NEW_SECRET], "msg_abc", BODY, now)
    assert headers["webhook-id"] == "msg_abc" and headers["webhook-timestamp"] == str(now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (OLD_SECRET, NEW_SECRET):  # the receivers' own library, as they would run it
        assert Webhook(secret).verify(BODY, headers) == orjson.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD_SECRET).verify(BODY + b" ", headers)  # a changed body


def test_an_old_delivery_is_refused_by_the_receiver() -> None:
    headers = standard_headers([OLD_SECRET], "msg_abc", BODY, int(time.time()) - 3600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(OLD_SECRET).verify(BODY, headers)


def test_the_webhook_id_is_one_per_item_result_and_another_for_a_rerun() -> None:
    assert webhook_id("report-17") == webhook_id("report-17") != webhook_id("report-18")
    assert webhook_id(("report-17", "fix-1")) not in (webhook_id("report-17"), webhook_id(("report-17", "fix-2")))


def test_secrets_must_be_standard_webhooks_secrets_and_say_which_is_not() -> None:
    assert parse_secrets(f" {OLD_SECRET}, {NEW_SECRET.removeprefix('whsec_')} ") == [
        OLD_SECRET, NEW_SECRET.removeprefix("whsec_")]
    with pytest.raises(ValueError, match="secret 2 is not base64"):
        parse_secrets(f"{OLD_SECRET},whsec_not base64!")
    with pytest.raises(ValueError, match="secret 1 is 6 bytes"):
        parse_secrets("whsec_" + base64.b64encode(b"short!").decode())


def test_the_docs_receiver_verifies_with_the_standard_library_alone() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "routing.md").read_text()
    code = page.split("<!-- receiver -->\n```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, object] = {}
    exec(compile(code, "docs/routing.md receiver", "exec"), scope)  # noqa: S102 - the docs' own example
    received = scope["verified"]
    now = int(time.time())
    headers = standard_headers([OLD_SECRET, NEW_SECRET], "msg_abc", BODY, now)
    assert received(NEW_SECRET, headers, BODY, now) is True  # type: ignore[operator]
    assert received(NEW_SECRET, headers, BODY + b"x", now) is False  # type: ignore[operator]
    assert received(NEW_SECRET, headers, BODY, now + 3600) is False  # type: ignore[operator]
