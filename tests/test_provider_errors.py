"""How an SDK's error becomes tierline's: what it says about the items, the account, or the provider's room."""

from __future__ import annotations

import anthropic
import httpx2 as httpx  # the SDKs' own HTTP client
import openai
import pytest
from botocore.exceptions import ClientError

from providers.base import (AccountRefused, BatchNotFound, BatchRejected, ItemsRefused, ProviderBusy,
                            ProviderUnavailable, translate_sdk_error)
from providers.bedrock.batches import _BELOW_MINIMUM as BELOW_MINIMUM
from providers.bedrock.batches import _translate as bedrock_translate

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


def aws_error(status: int, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "CreateModelInvocationJob")


@pytest.mark.parametrize(("exc", "kind"), [
    (aws_error(403, "AccessDeniedException", "not authorized to perform: bedrock:CreateModelInvocationJob"),
     AccountRefused),
    (aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid."),
     AccountRefused),
    (aws_error(400, "ExpiredTokenException", "The security token included in the request is expired"),
     AccountRefused),
    (aws_error(404, "NoSuchBucket", "The specified bucket does not exist"), AccountRefused),
    (aws_error(404, "ResourceNotFoundException", "Could not find job"), BatchNotFound),
    (aws_error(400, "ServiceQuotaExceededException", "jobs in progress at the limit"), ProviderBusy),
    (aws_error(429, "ThrottlingException", "Rate exceeded"), ProviderUnavailable),
    (aws_error(400, "ValidationException", "The provided model identifier is invalid."), BatchRejected),
])
def test_bedrocks_errors_say_whose_they_are(exc: ClientError, kind: type) -> None:
    translated = bedrock_translate(exc)
    assert type(translated) is kind


def test_a_bedrock_job_under_the_accounts_minimum_names_that_minimum() -> None:
    words = "Batch job contains less records (60) than the required minimum of: 100"
    assert (match := BELOW_MINIMUM.search(words)) is not None and match.group(2) == "100"
