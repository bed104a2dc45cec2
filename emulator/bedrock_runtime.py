"""AWS Bedrock's runtime, as boto3's ``bedrock-runtime`` client speaks it: InvokeModel and Converse.

``POST /model/{modelId}/invoke`` takes the model's own body (Claude's Messages body with
``anthropic_version`` for ``anthropic.`` models) and answers in the model's shape, with the
token counts also in ``X-Amzn-Bedrock-Input-Token-Count`` / ``-Output-Token-Count``;
``POST /model/{modelId}/converse`` takes and answers Converse's. Errors are rest-json as the
control plane's: ``ValidationException`` (400) for a body the model refuses or
``#emulate:errored``, ``ServiceUnavailableException`` (503) for ``#emulate:flaky`` (its
first attempt) and ``--error-rate``, ``ModelTimeoutException`` (408) for
``#emulate:expired``, and ``ThrottlingException`` (429) beyond ``requests_per_minute``.
"""

from __future__ import annotations

import hashlib

import orjson
from aiohttp import web

from emulator.bedrock_api import checked, error, output
from emulator.behaviour import Behaviour
from emulator.realtime_api import RateLimit

__all__ = ["BedrockRuntimeEmulator"]

#: What each outcome other than ok answers, as Bedrock's runtime names it.
_FAILURES = {"errored": (400, "ValidationException"), "retryable": (503, "ServiceUnavailableException"),
             "expired": (408, "ModelTimeoutException")}


class BedrockRuntimeEmulator:
    def __init__(self, behaviour: Behaviour, limit: RateLimit) -> None:
        self._behaviour = behaviour
        self._limit = limit

    def routes(self) -> list[web.RouteDef]:
        return [web.post(r"/model/{model:.+}/invoke", self.invoke),
                web.post(r"/model/{model:.+}/converse", self.converse)]

    async def invoke(self, request: web.Request) -> web.Response:
        return await self._answer(request, converse=False)

    async def converse(self, request: web.Request) -> web.Response:
        return await self._answer(request, converse=True)

    async def _answer(self, request: web.Request, converse: bool) -> web.Response:
        if self._limit.admit() is not None:
            return error(429, "ThrottlingException", "Too many requests, please wait before trying again.")
        model_id, raw = request.match_info["model"], await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return error(400, "ValidationException",
                         "Malformed input request, please reformat your input and try again.")
        if not isinstance(body, dict):
            return error(400, "ValidationException", "The request body must be a JSON object.")
        # A synchronous request has no custom_id: the same body again is the same request retried.
        decided = self._behaviour.decide("sync-" + hashlib.sha256(raw).hexdigest()[:32], raw, body)
        outcome = checked(decided, body, model_id, converse)
        if outcome.kind in _FAILURES:
            status, kind = _FAILURES[outcome.kind]
            return error(status, kind, outcome.message or f"emulated {kind}")
        answer = orjson.dumps(output(model_id, outcome, converse, body))
        return web.Response(body=answer, content_type="application/json",
                            headers={"X-Amzn-Bedrock-Input-Token-Count": str(outcome.input_tokens),
                                     "X-Amzn-Bedrock-Output-Token-Count": str(outcome.output_tokens)})
