"""Bedrock's synchronous calls (InvokeModel, Converse) through boto3, against the emulator's runtime."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from providers.bedrock.runtime import Answer, BedrockRuntime
from providers.sync_api import error_info
from streams.local.stack import free_port
from streams.local.workload import BEDROCK_CLAUDE, BEDROCK_NOVA

pytestmark = pytest.mark.integration

CLAUDE_BODY = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 32,
               "messages": [{"role": "user", "content": "Name a tide pool creature."}]}
CONVERSE = {"messages": [{"role": "user", "content": [{"text": "Name a tide pool creature."}]}],
            "inferenceConfig": {"maxTokens": 32}}


def calls(port: int, *requests: tuple[str, str, dict]) -> list[Answer]:
    async def run() -> list[Answer]:
        runtime = BedrockRuntime("us-east-1", calls=4)
        try:
            return [await runtime.call(model, invocation, params) for model, invocation, params in requests]
        finally:
            runtime.close()
    return asyncio.run(run())


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, emulator_port: int) -> int:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", f"http://127.0.0.1:{emulator_port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")
    return emulator_port


def test_invoke_model_answers_in_the_models_own_shape_and_converse_in_converses(aws: int) -> None:
    claude, nova = calls(aws, (BEDROCK_CLAUDE, "invoke", CLAUDE_BODY), (BEDROCK_NOVA, "converse", CONVERSE))
    assert claude.status == nova.status == 200
    message = orjson.loads(claude.body)
    assert message["type"] == "message" and message["usage"]["output_tokens"] > 0
    converse = orjson.loads(nova.body)
    assert converse["output"]["message"]["role"] == "assistant" and converse["usage"]["inputTokens"] > 0
    assert "ResponseMetadata" not in converse  # boto3's own bookkeeping is not the answer


def test_errors_come_back_named_as_bedrock_names_them(aws: int) -> None:
    errored = {**CLAUDE_BODY, "messages": [{"role": "user", "content": "x #emulate:errored"}]}
    flaky = {**CLAUDE_BODY, "messages": [{"role": "user", "content": "x #emulate:flaky"}]}
    no_version = {k: v for k, v in CLAUDE_BODY.items() if k != "anthropic_version"}
    refused, busy, busy_again_ok, malformed, unknown_field = calls(
        aws, (BEDROCK_CLAUDE, "invoke", errored), (BEDROCK_CLAUDE, "invoke", flaky),
        (BEDROCK_CLAUDE, "invoke", flaky), (BEDROCK_CLAUDE, "invoke", no_version),
        (BEDROCK_NOVA, "converse", {**CONVERSE, "maxTokens": 5}))
    assert (refused.status, error_info(refused.status, refused.body).type) == (400, "ValidationException")
    assert (busy.status, error_info(busy.status, busy.body).type) == (503, "ServiceUnavailableException")
    assert busy_again_ok.status == 200  # the same request again: the fault was passing
    assert malformed.status == 400 and "anthropic_version" in error_info(400, malformed.body).message
    # botocore refuses a Converse field it does not know before anything is sent: the item's fault.
    assert (unknown_field.status, error_info(400, unknown_field.body).type) == (400, "ValidationException")
    assert "maxTokens" in error_info(400, unknown_field.body).message


def test_no_answer_at_all_is_599(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    [answer] = calls(0, (BEDROCK_CLAUDE, "invoke", CLAUDE_BODY))
    assert answer.status == 599 and error_info(599, answer.body).type == "EndpointConnectionError"
