"""AWS Bedrock's synchronous calls, InvokeModel and Converse, for the async-queue agent.

boto3 signs and sends them (SigV4 is not worth writing twice); being synchronous, each call
runs in a thread of this caller's own pool, as many as calls may be under way at once, so
that long model calls never wait behind each other for the event loop's small default pool.
botocore's own retries are off: the agent's loop decides what a throttle or a server
error costs, the same way for every provider.

An answer comes back as the HTTP status, the body and the seconds to wait when the
service said; an error's body is ``{"error": {"type", "message"}}``, the exception's name
as its type, which ``providers.sync_api.error_info`` reads as it reads the others'.
Credentials, region and endpoint are boto3's own (``AWS_*``, ``~/.aws``;
``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` points it at the emulator).
"""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import orjson
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from core.spec import Item
from providers.sync_api import Answer

__all__ = ["BedrockRuntime"]


class BedrockRuntime:
    """One ``bedrock-runtime`` client; ``calls`` is how many may be under way at once."""

    def __init__(self, region: str = "", calls: int = 16, session: boto3.session.Session | None = None) -> None:
        session = session or boto3.session.Session(region_name=region or None)
        config = Config(retries={"total_max_attempts": 1}, max_pool_connections=calls,
                        read_timeout=600, connect_timeout=10)
        self._client: Any = None
        self._problem: str | None = None
        try:
            self._client = session.client("bedrock-runtime", config=config)
        except BotoCoreError as exc:  # no region, most likely: each call says so, the worker stays up
            self._problem = f"bedrock-runtime: {exc} (set TIERLINE_BEDROCK_REGION or AWS_REGION)"
        self._threads = ThreadPoolExecutor(max_workers=calls, thread_name_prefix="bedrock-runtime")

    async def send(self, item: Item) -> Answer:
        """The item's call: its invocation, of its model."""
        return await self.call(item.model or "", item.invocation or "invoke", item.params)

    async def call(self, model: str, invocation: str, params: dict[str, Any]) -> Answer:
        """InvokeModel (``params`` is the model's own body) or Converse (``params`` is Converse's request)."""
        if self._client is None:
            return _error(400, "ConfigurationError", self._problem or "no bedrock-runtime client")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._threads, self._send, model, invocation, params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            meta = exc.response.get("ResponseMetadata", {})
            status = int(meta.get("HTTPStatusCode") or 500)
            wait = (meta.get("HTTPHeaders") or {}).get("retry-after")
            return _error(status, str(error.get("Code") or f"http_{status}"), str(error.get("Message") or exc),
                          float(wait) if wait and wait.replace(".", "", 1).isdigit() else None)
        except ParamValidationError as exc:  # botocore's own check of a Converse request: the item's fault
            return _error(400, "ValidationException", str(exc))
        except BotoCoreError as exc:  # no answer: refused, timed out, cut off
            return _error(599, type(exc).__name__, str(exc))

    def _send(self, model: str, invocation: str, params: dict[str, Any]) -> Answer:
        if invocation == "converse":
            answer = self._client.converse(modelId=model, **params)
            answer.pop("ResponseMetadata", None)
            return Answer(200, orjson.dumps(answer, default=_base64))
        answer = self._client.invoke_model(modelId=model, body=orjson.dumps(params),
                                           contentType="application/json", accept="application/json")
        with answer["body"] as body:
            return Answer(200, body.read())

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:
            self._client.close()


def _base64(value: Any) -> str:
    """Converse's blobs (a document or image the model returned, redacted reasoning) as JSON carries them."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _error(status: int, kind: str, message: str, retry_after_s: float | None = None) -> Answer:
    return Answer(status, orjson.dumps({"error": {"type": kind, "message": message}}), retry_after_s)
