"""How an SDK's error becomes tierline's: what it says about the items, the account, or the provider's room.

One decision (``providers.errors.meaning``) reads each provider's words from the table beside its spec."""

from __future__ import annotations

import anthropic
import httpx2 as httpx  # the SDKs' own HTTP client
import openai
import pytest
from botocore.exceptions import ClientError

from providers.anthropic.errors import WORDS as ANTHROPIC
from providers.base import (AccountRefused, BatchNotFound, BatchRejected, ItemsRefused, ProviderBusy, ProviderError,
                            ProviderUnavailable)
from providers.bedrock.batches import _BELOW_MINIMUM as BELOW_MINIMUM
from providers.bedrock.errors import WORDS as BEDROCK
from providers.bedrock.errors import said_by_boto
from providers.errors import meaning, said_by_sdk
from providers.gemini.errors import WORDS as GEMINI
from providers.gemini.errors import said_by_genai
from providers.openai.errors import WORDS as OPENAI

REQUEST = httpx.Request("POST", "https://api.example/v1/batches")


def translate_sdk_error(exc: Exception, creating: bool = False, about_items: bool = False) -> ProviderError:
    words = ANTHROPIC if isinstance(exc, anthropic.APIStatusError) else OPENAI
    return meaning(said_by_sdk(exc), words, creating=creating, about_items=about_items)


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


@pytest.mark.parametrize(("exc", "creating", "kind"), [
    (aws_error(403, "AccessDeniedException", "not authorized to perform: bedrock:CreateModelInvocationJob"), True,
     AccountRefused),
    (aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid."), False,
     AccountRefused),
    (aws_error(400, "ExpiredTokenException", "The security token included in the request is expired"), False,
     AccountRefused),
    (aws_error(404, "NoSuchBucket", "The specified bucket does not exist"), True, AccountRefused),
    (aws_error(404, "ResourceNotFoundException", "Could not find job"), False, BatchNotFound),
    (aws_error(400, "ServiceQuotaExceededException", "jobs in progress at the limit"), True, ProviderBusy),
    (aws_error(429, "ThrottlingException", "Rate exceeded"), False, ProviderUnavailable),
    (aws_error(400, "ValidationException", "The provided model identifier is invalid."), True, BatchRejected),
])
def test_bedrocks_errors_say_whose_they_are(exc: ClientError, creating: bool, kind: type) -> None:
    assert type(meaning(said_by_boto(exc), BEDROCK, creating=creating)) is kind


def gemini_error(code: int, status: str, message: str) -> Exception:
    from google.genai import errors as genai_errors

    return genai_errors.APIError(code, {"error": {"code": code, "status": status, "message": message}})


@pytest.mark.parametrize(("exc", "creating", "kind"), [
    (gemini_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."), True, AccountRefused),
    (gemini_error(429, "RESOURCE_EXHAUSTED", "Too many batch jobs"), True, ProviderBusy),
    (gemini_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"), False, ProviderUnavailable),
    (gemini_error(404, "NOT_FOUND", "File files/abc is not found"), True, ProviderUnavailable),
    (gemini_error(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"), True, BatchRejected),
    (gemini_error(404, "NOT_FOUND", "batches/123 not found"), False, BatchNotFound),
    (TimeoutError("read timed out"), False, ProviderUnavailable),
])
def test_geminis_errors_mean_what_the_others_do(exc: Exception, creating: bool, kind: type) -> None:
    assert type(meaning(said_by_genai(exc), GEMINI, creating=creating)) is kind


def test_a_bedrock_job_under_the_accounts_minimum_names_that_minimum() -> None:
    words = "Batch job contains less records (60) than the required minimum of: 100"
    assert (match := BELOW_MINIMUM.search(words)) is not None and match.group(2) == "100"
