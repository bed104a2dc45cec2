"""How an SDK's error becomes tierline's: what it says about the items, the account, or the provider's room."""

from __future__ import annotations

import anthropic
import httpx2 as httpx  # the SDKs' own HTTP client
import openai
import pytest

from providers.base import (AccountRefused, BatchRejected, ItemsRefused, ProviderBusy, ProviderUnavailable,
                            translate_sdk_error)

REQUEST = httpx.Request("POST", "https://api.example/v1/batches")


def anthropic_error(status: int, kind: str, message: str) -> anthropic.APIStatusError:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    response = httpx.Response(status, json=body, request=REQUEST)
    return anthropic.APIStatusError(message, response=response, body=body)


def openai_error(status: int, code: str, message: str) -> openai.APIStatusError:
    body = {"error": {"message": message, "type": code, "code": code}}
    response = httpx.Response(status, json=body, request=REQUEST)
    return openai.APIStatusError(message, response=response, body=body["error"])


@pytest.mark.parametrize("exc", [
    anthropic_error(429, "rate_limit_error", "Number of requests in the processing queue would exceed your limit"),
    anthropic_error(529, "overloaded_error", "Overloaded"),
    openai_error(429, "rate_limit_exceeded", "Too many batch creations in the last hour"),
])
def test_no_room_on_create_is_busy_not_a_failure(exc: Exception) -> None:
    assert type(translate_sdk_error(exc, creating=True)) is ProviderBusy


def test_a_429_for_want_of_credit_is_the_accounts_not_capacity() -> None:
    exc = openai_error(429, "insufficient_quota", "You exceeded your current quota, please check your plan")
    assert isinstance(translate_sdk_error(exc, creating=True), AccountRefused)


def test_a_429_on_a_poll_is_retried_as_unavailable() -> None:
    error = translate_sdk_error(anthropic_error(429, "rate_limit_error", "slow down"))
    assert type(error) is ProviderUnavailable and error.retryable


def test_a_400_on_create_is_about_the_items_and_names_one() -> None:
    error = translate_sdk_error(anthropic_error(400, "invalid_request_error", "requests.3.params.max_tokens: "
                                                "Field required"), about_items=True, creating=True)
    assert isinstance(error, ItemsRefused) and error.culprits == {3: "requests.3.params.max_tokens: Field required"}


def test_a_400_elsewhere_rejects_the_batch() -> None:
    assert type(translate_sdk_error(openai_error(400, "invalid_request", "bad endpoint"))) is BatchRejected
