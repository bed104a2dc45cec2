"""OpenAI's Files and Batch APIs: ``/v1/files`` and ``/v1/batches``.

Shapes follow OpenAI's OpenAPI spec: a batch moves validating → in_progress →
finalizing → completed (or failed at validation, expired when some of its
requests could not run, cancelling → cancelled). Finished requests go to the
output file, failed and expired ones to the error file, as the real service does.
The file's lines are checked at validation (a failed batch whose errors name each bad
line; ``#emulate:invalid-line`` makes one), each body as its request runs (a 400 line).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from emulator.answers import openai_message
from emulator.webhooks import Notifier
from emulator.behaviour import Behaviour, Outcome, embedding, embedding_base64, prompt_of
from emulator.ids import new_id
from emulator.downloads import broken_off
from emulator.recorder import Recorder

Json = dict[str, Any]

MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
BYTES_PER_TOKEN = 4  # how the emulator counts a request's tokens against the enqueued-token limit
ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/responses", "/v1/completions")
FILES_KEPT_S = 30 * 24 * 3600


def error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
          param: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, dumps=lambda o: orjson.dumps(o).decode())


def ok(body: Json) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


@dataclass
class StoredFile:
    id: str
    path: Path
    bytes: int
    filename: str
    purpose: str
    created_at: int
    kept_s: int = FILES_KEPT_S

    def describe(self) -> Json:
        return {
            "id": self.id, "object": "file", "bytes": self.bytes, "created_at": self.created_at,
            "filename": self.filename, "purpose": self.purpose, "status": "processed",
            "expires_at": self.created_at + self.kept_s, "status_details": None,
        }


@dataclass
class OpenAIBatch:
    id: str
    endpoint: str
    input_file_id: str
    created_at: float
    metadata: Json | None
    requests: list[tuple[str, bytes, Json]]
    errors: list[Json] = field(default_factory=list)
    model: str | None = None
    status: str = "validating"
    timestamps: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    usage: Json | None = None
    cancel_requested: float | None = None
    output_kept_s: int = FILES_KEPT_S  # output_expires_after.seconds, if the create said
    tokens: int = 0  # its input tokens, as the enqueued-token limit counts them
    announce: bool = False  # created while a webhook endpoint was set: its end is sent there


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a service of OpenAI's Files + Batch shape differs from OpenAI's own (a declared lane's quirks)."""

    name: str = "openai"
    purpose: str = "batch"  # what an upload for a batch must say
    metadata: bool = True  # False: a create that carries metadata is refused
    completion_window: str = "24h"
    endpoints: tuple[str, ...] = ENDPOINTS


class OpenAIEmulator:
    """In-memory state of the emulated OpenAI account (or of a service that speaks its dialect)."""

    def __init__(self, data_dir: Path, behaviour: Behaviour, batch_seconds: float,
                 recorder: Recorder, expires_after_s: float = 24 * 3600, enqueued_token_limit: int = 0,
                 transient_404_s: float = 0.0, messy: bool = False, dialect: Dialect = Dialect()) -> None:
        self.dialect = dialect
        self.messy = messy
        self._cut: set[str] = set()  # files whose first download broke off (messy)
        self.expires_after_s = expires_after_s
        self.transient_404_s = transient_404_s
        self.enqueued_token_limit = enqueued_token_limit
        self.token_limit_failures = 0
        self.dir = data_dir / dialect.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.behaviour = behaviour
        self.batch_seconds = batch_seconds
        self.recorder = recorder
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, OpenAIBatch] = {}
        #: Batches in progress stay as they are, counts and all (``POST /_emulator/hold``): a provider having a slow
        #: day, for as long as a test needs. Released, time catches up at once.
        self.held = False
        #: Where the project's webhooks go (``emulator.webhooks``), if anywhere.
        self.notifier: Notifier | None = None

    def routes(self, prefix: str = "/v1") -> list[web.RouteDef]:
        return [
            web.post(f"{prefix}/files", self.upload_file),
            web.get(f"{prefix}/files/{{id}}", self.retrieve_file),
            web.get(f"{prefix}/files/{{id}}/content", self.file_content),
            web.delete(f"{prefix}/files/{{id}}", self.delete_file),
            web.post(f"{prefix}/batches", self.create_batch),
            web.get(f"{prefix}/batches", self.list_batches),
            web.get(f"{prefix}/batches/{{id}}", self.retrieve_batch),
            web.post(f"{prefix}/batches/{{id}}/cancel", self.cancel_batch),
        ]

    # -- files ---------------------------------------------------------------

    async def upload_file(self, request: web.Request) -> web.Response:
        reader = await request.multipart()
        purpose, stored = None, None
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue  # a nested multipart: not something the SDK sends
            if part.name == "purpose":
                purpose = (await part.text()).strip()
            elif part.name == "file":
                file_id = new_id("file-")
                path = self.dir / file_id
                size = 0
                with path.open("wb") as out:
                    while chunk := await part.read_chunk(1 << 20):
                        size += len(chunk)
                        if size > MAX_FILE_BYTES:
                            path.unlink()
                            return error(413, f"File is larger than {MAX_FILE_BYTES} bytes.")
                        out.write(chunk)
                stored = StoredFile(file_id, path, size, part.filename or "upload.jsonl", "", int(time.time()))
        if stored is None:
            return error(400, "Missing required parameter: 'file'.", param="file")
        if purpose not in (self.dialect.purpose, "fine-tune", "assistants", "vision", "user_data", "evals"):
            return error(400, f"Invalid value for 'purpose': {purpose!r}.", param="purpose")
        stored.purpose = purpose
        self.files[stored.id] = stored
        return ok(stored.describe())

    async def retrieve_file(self, request: web.Request) -> web.Response:
        stored = self.files.get(request.match_info["id"])
        if stored is None:
            return error(404, f"No such File object: {request.match_info['id']}", code="file_not_found")
        return ok(stored.describe())

    async def delete_file(self, request: web.Request) -> web.Response:
        stored = self.files.pop(request.match_info["id"], None)
        if stored is None:
            return error(404, f"No such File object: {request.match_info['id']}", code="file_not_found")
        stored.path.unlink(missing_ok=True)
        return ok({"id": stored.id, "object": "file", "deleted": True})

    async def file_content(self, request: web.Request) -> web.StreamResponse:
        stored = self.files.get(request.match_info["id"])
        if stored is None:
            return error(404, f"No such File object: {request.match_info['id']}", code="file_not_found")
        if self.messy and stored.purpose == "batch_output" and stored.id not in self._cut:
            self._cut.add(stored.id)
            return await broken_off(request, stored.path.read_bytes())
        return web.FileResponse(stored.path, headers={"Content-Type": "application/octet-stream"})

    # -- batches -------------------------------------------------------------

    async def create_batch(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return error(400, "We could not parse the JSON body of your request.")
        endpoint, file_id = body.get("endpoint"), body.get("input_file_id")
        window = self.dialect.completion_window
        if body.get("completion_window") != window:
            return error(400, f"Invalid 'completion_window': only '{window}' is supported.", param="completion_window")
        if endpoint not in self.dialect.endpoints:
            return error(400, f"Invalid 'endpoint': {endpoint!r}.", param="endpoint")
        stored = self.files.get(file_id)
        if stored is None:
            return error(404, f"No such File object: {file_id}", code="file_not_found", param="input_file_id")
        metadata = body.get("metadata")
        if metadata is not None and not self.dialect.metadata:
            return error(400, "Unrecognized request argument supplied: metadata", param="metadata")
        if metadata is not None and (
            len(metadata) > 16
            or any(len(k) > 64 or not isinstance(v, str) or len(v) > 512 for k, v in metadata.items())
        ):
            return error(400, "Invalid 'metadata': at most 16 pairs, keys up to 64 and values up to 512 characters.",
                         param="metadata")
        expiry = body.get("output_expires_after")
        if expiry is not None and not (isinstance(expiry, dict) and expiry.get("anchor") == "created_at"
                                       and isinstance(expiry.get("seconds"), int)
                                       and 3_600 <= expiry["seconds"] <= 2_592_000):
            return error(400, "Invalid 'output_expires_after': anchor must be 'created_at' and seconds from 3600 "
                         "to 2592000.", param="output_expires_after")
        batch = OpenAIBatch(new_id("batch_"), endpoint, file_id, time.time(), metadata, [])
        if expiry is not None:
            batch.output_kept_s = expiry["seconds"]
        batch.timestamps["created_at"] = int(batch.created_at)
        batch.timestamps["expires_at"] = int(batch.created_at + self.expires_after_s)
        batch.announce = self.notifier is not None and bool(self.notifier.openai_url)
        self._validate(batch, stored)
        if not batch.errors and self.enqueued_token_limit:
            self._admit(batch)
        self.batches[batch.id] = batch
        if not batch.errors:
            self.recorder.record(self.dialect.name, batch.id, [r[0] for r in batch.requests])
        return ok(self._describe(batch))

    def _validate(self, batch: OpenAIBatch, stored: StoredFile) -> None:
        seen: set[str] = set()
        models: set[str] = set()
        with stored.path.open("rb") as lines:
            for number, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                problem = None
                try:
                    line = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    line, problem = {}, ("invalid_json_line", "This line is not parseable as valid JSON.")
                custom_id, body = line.get("custom_id"), line.get("body")
                if problem:
                    pass
                elif not isinstance(custom_id, str) or not custom_id:
                    problem = ("missing_required_parameter", "Missing required parameter: 'custom_id'.")
                elif custom_id in seen:
                    problem = ("duplicate_custom_id", f"The custom_id '{custom_id}' is not unique in the file.")
                elif line.get("method") != "POST" or line.get("url") != batch.endpoint:
                    problem = ("invalid_url", f"The url must be '{batch.endpoint}' with method POST.")
                elif not isinstance(body, dict) or not body.get("model"):
                    problem = ("missing_required_parameter", "Missing required parameter: 'body.model'.")
                elif str(body["model"]).startswith("emulate-reject"):
                    problem = ("model_not_found", f"The model '{body['model']}' does not exist.")
                elif b"#emulate:invalid-line" in raw:
                    problem = ("invalid_request", "This line is not a valid request (#emulate:invalid-line).")
                if problem:
                    batch.errors.append({"code": problem[0], "message": problem[1], "param": None, "line": number})
                    continue
                seen.add(custom_id)
                models.add(body["model"])
                batch.requests.append((custom_id, raw, body))
        if len(models) > 1:
            batch.errors.append({"code": "mixed_models", "line": None, "param": None,
                                 "message": "All requests in a batch must use the same model."})
        if len(batch.requests) > MAX_REQUESTS:
            batch.errors.append({"code": "too_many_requests", "line": None, "param": None,
                                 "message": f"A batch may contain at most {MAX_REQUESTS} requests."})
        if not batch.requests and not batch.errors:
            batch.errors.append({"code": "empty_file", "line": None, "param": None,
                                 "message": "The input file holds no requests."})
        batch.model = next(iter(models), None)
        batch.counts["total"] = len(batch.requests)

    def _admit(self, batch: OpenAIBatch) -> None:
        """The organisation's enqueued-token limit: counted per model over the unfinished batches."""
        batch.tokens = sum(len(raw) for _, raw, _ in batch.requests) // BYTES_PER_TOKEN
        now = time.time()
        waiting = sum(other.tokens for other in self.batches.values()
                      if other.model == batch.model and not other.errors and other.status != "cancelled"
                      and now - other.created_at < self.batch_seconds)
        if waiting + batch.tokens > self.enqueued_token_limit:
            self.token_limit_failures += 1
            batch.errors.append({
                "code": "token_limit_exceeded", "line": None, "param": None,
                "message": f"Enqueued token limit reached for {batch.model} in organization org-emulator. "
                           f"Limit: {self.enqueued_token_limit:,} enqueued tokens. Please try again once some "
                           "in_progress batches have been completed."})

    async def retrieve_batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None or time.time() - batch.created_at < self.transient_404_s:  # not yet visible: a while
            return error(404, f"No batch found with id '{request.match_info['id']}'.", code="not_found")
        self._advance(batch)
        return ok(self._describe(batch))

    async def list_batches(self, request: web.Request) -> web.Response:
        limit = min(100, int(request.query.get("limit", 20)))
        # What a retrieve does not see yet, a listing does not show either: both read the same store.
        visible = (b for b in self.batches.values() if time.time() - b.created_at >= self.transient_404_s)
        newest = sorted(visible, key=lambda b: b.created_at, reverse=True)
        after = request.query.get("after")
        if after:
            ids = [b.id for b in newest]
            newest = newest[ids.index(after) + 1:] if after in ids else []
        page = newest[:limit]
        for batch in page:
            self._advance(batch)
        data = [self._describe(b) for b in page]
        return ok({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                   "last_id": data[-1]["id"] if data else None, "has_more": len(newest) > limit})

    async def cancel_batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return error(404, f"No batch found with id '{request.match_info['id']}'.", code="not_found")
        self._advance(batch)
        if batch.status not in ("validating", "in_progress"):
            return error(409, f"Cannot cancel a batch with status '{batch.status}'.")
        batch.cancel_requested = time.time()
        batch.status = "cancelling"
        batch.timestamps["cancelling_at"] = int(batch.cancel_requested)
        return ok(self._describe(batch))

    # -- time passing --------------------------------------------------------

    def announce_ended(self) -> None:
        """Each batch created while a webhook endpoint was set, once it ends: ``batch.completed``, ``.failed``,
        ``.expired`` or ``.cancelled`` to the endpoint (the ticker of ``emulator.webhooks`` calls this)."""
        if self.notifier is None:
            return
        for batch in self.batches.values():
            if not batch.announce:
                continue
            self._advance(batch)
            if batch.status in ("completed", "failed", "expired", "cancelled"):
                batch.announce = False
                self.notifier.announce([self.notifier.openai_url], self.notifier.openai_secret,
                                       f"batch.{batch.status}", {"id": batch.id})

    def _advance(self, batch: OpenAIBatch) -> None:
        now = time.time()
        elapsed = now - batch.created_at
        if batch.status == "validating" and elapsed >= min(0.2, self.batch_seconds / 10):
            if batch.errors:
                batch.status = "failed"
                batch.timestamps["failed_at"] = int(now)
                return
            batch.status = "in_progress"
            batch.timestamps["in_progress_at"] = int(now)
        if batch.status == "in_progress" and elapsed >= self.batch_seconds and not self.held:
            self._finish(batch, now, None)
        elif batch.status == "in_progress" and not self.held:
            # Counted as they run, as the live API's request_counts grow: outcomes are decided at the end, so the
            # running count is of requests done, all as completed.
            batch.counts["completed"] = int(batch.counts["total"] * elapsed / max(self.batch_seconds, 1e-9))
        elif batch.status == "cancelling" and now - (batch.cancel_requested or now) >= 0.5:
            done = int(len(batch.requests) * min(1.0, ((batch.cancel_requested or now) - batch.created_at)
                                                 / max(self.batch_seconds, 1e-9)))
            self._finish(batch, now, done)

    def _finish(self, batch: OpenAIBatch, now: float, cancelled_after: int | None) -> None:
        out_path, err_path = self.dir / new_id("file-"), self.dir / new_id("file-")
        prompt_tokens = completion_tokens = 0
        any_expired = False
        batch.counts.update(completed=0, failed=0)  # the running count gives way to the outcomes
        with out_path.open("wb") as out, err_path.open("wb") as err:
            for index, (custom_id, raw, body) in enumerate(batch.requests):
                if cancelled_after is not None and index >= cancelled_after:
                    err.write(_error_line(custom_id, "batch_cancelled",
                                          "This request was not executed because the batch was cancelled."))
                    batch.counts["failed"] += 1
                    continue
                if (problem := _body_problem(batch.endpoint, body)) is not None:
                    # The file's shape is checked at validation; each body, as its request runs.
                    batch.counts["failed"] += 1
                    err.write(_line(custom_id, 400, {"error": {"message": problem, "code": None, "param": None,
                                                               "type": "invalid_request_error"}}))
                    continue
                outcome = self.behaviour.decide(custom_id, raw, body, "openai")
                if outcome.kind == "ok":
                    response = _response_body(batch.endpoint, body, outcome)
                    out.write(_line(custom_id, 200, response))
                    batch.counts["completed"] += 1
                    prompt_tokens += outcome.input_tokens
                    completion_tokens += outcome.output_tokens
                    continue
                batch.counts["failed"] += 1
                if outcome.kind == "expired":
                    any_expired = True
                    err.write(_error_line(custom_id, "batch_expired", "This request could not be executed "
                                          "before the completion window expired."))
                elif outcome.kind == "errored":
                    err.write(_line(custom_id, 400, {"error": {"message": outcome.message, "code": None,
                                                               "type": "invalid_request_error", "param": None}}))
                else:  # messy: as some real error lines say, with no HTTP status at all
                    err.write(_line(custom_id, 0 if self.messy else 500, {"error": {
                        "message": outcome.message, "code": None, "type": "server_error", "param": None}}))
        batch.output_file_id = self._keep(out_path, "batch_output", batch.output_kept_s)
        batch.error_file_id = self._keep(err_path, "batch_error", batch.output_kept_s)
        if self.messy and batch.error_file_id is None:
            batch.error_file_id = ""  # as the live API sometimes says of a clean batch
        batch.usage = {"input_tokens": prompt_tokens, "output_tokens": completion_tokens,
                       "total_tokens": prompt_tokens + completion_tokens,
                       "input_tokens_details": {"cached_tokens": 0},
                       "output_tokens_details": {"reasoning_tokens": 0}}
        if cancelled_after is not None:
            batch.status = "cancelled"
            batch.timestamps["cancelled_at"] = int(now)
        elif any_expired:
            batch.status = "expired"
            batch.timestamps["expired_at"] = int(now)
        else:
            batch.timestamps["finalizing_at"] = int(now)
            batch.status = "completed"
            batch.timestamps["completed_at"] = int(now)

    def _keep(self, path: Path, purpose: str, kept_s: int) -> str | None:
        size = path.stat().st_size
        if size == 0:
            path.unlink()
            return None
        stored = StoredFile(path.name, path, size, f"{path.name}.jsonl", purpose, int(time.time()), kept_s)
        self.files[stored.id] = stored
        return stored.id

    def _describe(self, batch: OpenAIBatch) -> Json:
        names = ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at",
                 "cancelling_at", "cancelled_at")
        described: Json = {
            "id": batch.id, "object": "batch", "endpoint": batch.endpoint, "model": batch.model,
            "errors": {"object": "list", "data": batch.errors} if batch.status == "failed" else None,
            "input_file_id": batch.input_file_id, "completion_window": self.dialect.completion_window,
            "status": batch.status,
            "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
            "created_at": batch.timestamps["created_at"], "expires_at": batch.timestamps["expires_at"],
            "request_counts": dict(batch.counts), "metadata": batch.metadata, "usage": batch.usage,
        }
        described.update({name: batch.timestamps.get(name) for name in names})
        return described


def _line(custom_id: str, status: int, body: Json) -> bytes:
    return orjson.dumps({
        "id": new_id("batch_req_"), "custom_id": custom_id,
        "response": {"status_code": status, "request_id": new_id("req_"), "body": body}, "error": None,
    }) + b"\n"


def _error_line(custom_id: str, code: str, message: str) -> bytes:
    return orjson.dumps({"id": new_id("batch_req_"), "custom_id": custom_id, "response": None,
                         "error": {"code": code, "message": message}}) + b"\n"


def _body_problem(endpoint: str, body: Json) -> str | None:
    """What OpenAI answers 400 to in one request of a batch, in its words."""
    for name in ("max_tokens", "max_completion_tokens", "n", "dimensions"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return f"Invalid type for '{name}': expected an integer, but got {type(value).__name__} instead."
    if endpoint == "/v1/chat/completions":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "Invalid 'messages': expected a non-empty array."
        for number, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                return f"Invalid 'messages[{number}]': expected an object with a 'role'."
    if endpoint == "/v1/embeddings" and not isinstance(body.get("input"), (str, list)):
        return "Invalid 'input': expected a string or an array."
    return None


def _response_body(endpoint: str, body: Json, outcome: Outcome) -> Json:
    model, created = body["model"], int(time.time())
    if endpoint == "/v1/embeddings":
        inputs = body.get("input")
        inputs = inputs if isinstance(inputs, list) else [inputs]
        encode = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(inputs):
            vector = embedding(str(text), int(body.get("dimensions") or 8))
            data.append({"object": "embedding", "index": index,
                         "embedding": embedding_base64(vector) if encode else vector})
        return {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": outcome.input_tokens, "total_tokens": outcome.input_tokens}}
    usage = {"prompt_tokens": outcome.input_tokens, "completion_tokens": outcome.output_tokens,
             "total_tokens": outcome.input_tokens + outcome.output_tokens,
             "prompt_tokens_details": {"cached_tokens": outcome.cached.read, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": outcome.reasoning_tokens, "audio_tokens": 0,
                                           "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
    if endpoint == "/v1/responses":
        status = "incomplete" if outcome.at_limit else "completed"
        output: list[Json] = [{"type": "reasoning", "id": new_id("rs_"), "summary": []}] \
            if outcome.reasoning_tokens else []
        if outcome.text:
            output.append({"type": "message", "id": new_id("msg_"), "status": status, "role": "assistant",
                           "content": [{"type": "output_text", "text": outcome.text, "annotations": []}]})
        return {
            "id": new_id("resp_"), "object": "response", "created_at": created, "status": status,
            "incomplete_details": {"reason": "max_output_tokens"} if outcome.at_limit else None,
            "model": model, "output": output,
            "usage": {"input_tokens": outcome.input_tokens, "output_tokens": outcome.output_tokens,
                      "total_tokens": usage["total_tokens"],
                      "input_tokens_details": {"cached_tokens": outcome.cached.read},
                      "output_tokens_details": {"reasoning_tokens": outcome.reasoning_tokens}},
        }
    message, finish_reason = openai_message(body, outcome)
    return {
        "id": new_id("chatcmpl-"), "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason, "logprobs": None, "message": message}],
        "usage": usage, "system_fingerprint": "fp_emulated",
    }


__all__ = ["Dialect", "OpenAIEmulator", "prompt_of"]
