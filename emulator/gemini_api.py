"""Google's Gemini Batch and Files APIs as ``google-genai`` speaks them, under ``/gemini`` (``PREFIX``).

Files are uploaded by the resumable protocol (a start, then chunks at offsets, the last one
finalising). A job is created from an uploaded JSONL file of ``{"key", "request"}`` lines with
``models/{model}:batchGenerateContent`` (``:generateContent`` is the synchronous call) and
answered as a long-running operation whose ``metadata`` is the batch: ``BATCH_STATE_PENDING`` →
``RUNNING`` → ``SUCCEEDED``; ``CANCELLED`` after a cancel; ``EXPIRED`` when a request carries
``#emulate:expired`` (the finished lines are kept). Its results are a generated file of
``{"key", "response" | "error"}`` lines written in another order than the input's, as the real
service is known to; a line that is no request gets an ``INVALID_ARGUMENT`` error line. Known
refusals: ``429 RESOURCE_EXHAUSTED`` on a create past the project's jobs in progress (after the
upload went through), 404 for a while after a create, 404 for a model it does not have.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from emulator.anthropic_api import _rfc3339
from emulator.behaviour import Behaviour, Outcome
from emulator.downloads import broken_off
from emulator.ids import new_id
from emulator.recorder import Recorder
from emulator.webhooks import Notifier

__all__ = ["GeminiEmulator", "error"]

Json = dict[str, Any]

MAX_FILE_BYTES = 2_000 * 1024 * 1024
#: Where the emulator serves Gemini (``GOOGLE_GEMINI_BASE_URL=http://HOST:PORT/gemini``): its ``/v1/files``
#: would be OpenAI's otherwise.
PREFIX = "/gemini"
_BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"


def error(code: int, status: str, message: str) -> web.Response:
    return web.Response(body=orjson.dumps({"error": {"code": code, "message": message, "status": status}}),
                        status=code, content_type="application/json")


def _ok(body: Json, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json", headers=headers)


@dataclass
class GeminiFile:
    name: str  # files/{id}
    path: Path
    size: int
    display_name: str | None
    mime_type: str
    created_at: float
    source: str  # UPLOADED or GENERATED

    def describe(self, base: str) -> Json:
        uri = f"{base}/v1/{self.name}"
        described: Json = {
            "name": self.name, "mimeType": self.mime_type, "sizeBytes": str(self.size),
            "createTime": _rfc3339(self.created_at), "updateTime": _rfc3339(self.created_at),
            "expirationTime": _rfc3339(self.created_at + 48 * 3600), "sha256Hash": "", "uri": uri,
            "state": "ACTIVE", "source": self.source,
        }
        if self.display_name:
            described["displayName"] = self.display_name
        if self.source == "GENERATED":
            described["downloadUri"] = f"{uri}:download?alt=media"
        return described


@dataclass
class Upload:
    path: Path
    size: int
    display_name: str | None
    mime_type: str
    received: int = 0


@dataclass
class GeminiJob:
    id: str
    model: str
    display_name: str
    input_file: str
    created_at: float
    lines: list[tuple[str | None, bytes, Json | None]]  # key, raw line, request (None: not a request)
    state: str = "BATCH_STATE_PENDING"
    ended_at: float | None = None
    cancel_requested: float | None = None
    output_file: str | None = None
    stats: dict[str, int] = field(default_factory=dict)
    webhook_uris: list[str] = field(default_factory=list)  # webhookConfig.uris: where its end is announced

    @property
    def name(self) -> str:
        return f"batches/{self.id}"


class GeminiEmulator:
    """In-memory state of the emulated Gemini project."""

    def __init__(self, data_dir: Path, behaviour: Behaviour, batch_seconds: float, recorder: Recorder,
                 max_jobs: int = 0, transient_404_s: float = 0.0, messy: bool = False, seed: int = 0) -> None:
        self.dir = data_dir / "gemini"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.behaviour = behaviour
        self.batch_seconds = batch_seconds
        self.recorder = recorder
        self.max_jobs = max_jobs
        self.transient_404_s = transient_404_s
        self.messy = messy
        self.files: dict[str, GeminiFile] = {}
        self.uploads: dict[str, Upload] = {}
        self.notifier: Notifier | None = None  # where webhooks are signed and sent (emulator.webhooks)
        self.jobs: dict[str, GeminiJob] = {}
        self.busy_refusals = 0
        self._cut: set[str] = set()
        self._rng = random.Random(seed)

    def routes(self) -> list[web.RouteDef]:
        v = "{version:v1|v1beta|v1alpha}"  # google-genai 3.x says v1; earlier versions, v1beta
        return [
            web.post(f"{PREFIX}/upload/{v}/files", self.upload),
            web.get(f"{PREFIX}/{v}/files", self.list_files),
            web.get(f"{PREFIX}/{v}/files/{{id:[^/:]+}}:download", self.download),
            web.get(f"{PREFIX}/{v}/files/{{id:[^/:]+}}", self.get_file),
            web.delete(f"{PREFIX}/{v}/files/{{id:[^/:]+}}", self.delete_file),
            web.post(f"{PREFIX}/{v}/models/{{model:[^/:]+}}:batchGenerateContent", self.create_job),
            web.post(f"{PREFIX}/{v}/models/{{model:[^/:]+}}:generateContent", self.generate_content),
            web.get(f"{PREFIX}/{v}/batches", self.list_jobs),
            web.post(f"{PREFIX}/{v}/batches/{{id:[^/:]+}}:cancel", self.cancel_job),
            web.get(f"{PREFIX}/{v}/batches/{{id:[^/:]+}}", self.get_job),
            web.delete(f"{PREFIX}/{v}/batches/{{id:[^/:]+}}", self.delete_job),
        ]

    # -- files ---------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        upload_id = request.query.get("upload_id")
        if upload_id is None:
            return await self._start_upload(request)
        upload = self.uploads.get(upload_id)
        if upload is None:
            return error(404, "NOT_FOUND", f"No upload session {upload_id}.")
        command = request.headers.get("X-Goog-Upload-Command", "")
        offset = int(request.headers.get("X-Goog-Upload-Offset", "-1"))
        if offset != upload.received:
            return error(400, "INVALID_ARGUMENT", f"Upload offset {offset} is not {upload.received}.")
        with upload.path.open("ab") as out:
            while chunk := await request.content.read(1 << 20):
                upload.received += len(chunk)
                out.write(chunk)
        if upload.received > MAX_FILE_BYTES:
            upload.path.unlink(missing_ok=True)
            del self.uploads[upload_id]
            return error(400, "INVALID_ARGUMENT", f"The file is larger than {MAX_FILE_BYTES} bytes.")
        if "finalize" not in command:
            return web.Response(headers={"X-Goog-Upload-Status": "active"})
        del self.uploads[upload_id]
        stored = self._keep(upload.path, upload.display_name, upload.mime_type, "UPLOADED")
        return _ok({"file": stored.describe(_base(request))}, {"X-Goog-Upload-Status": "final"})

    async def _start_upload(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Goog-Upload-Command") != "start":
            return error(400, "INVALID_ARGUMENT", "Expected X-Goog-Upload-Command: start.")
        try:
            doc = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError:
            return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        described = doc.get("file") or {}
        upload_id = new_id("")

        def field(camel: str, snake: str) -> Any:  # proto JSON takes either name; the SDK sends snake_case
            return described.get(camel, described.get(snake))

        size = int(request.headers.get("X-Goog-Upload-Header-Content-Length") or field("sizeBytes", "size_bytes") or 0)
        self.uploads[upload_id] = Upload(self.dir / f"upload-{upload_id}", size, field("displayName", "display_name"),
                                         field("mimeType", "mime_type") or "application/octet-stream")
        url = f"{request.scheme}://{request.host}{request.path}?upload_id={upload_id}&upload_protocol=resumable"
        return web.Response(headers={"X-Goog-Upload-URL": url, "X-Goog-Upload-Status": "active"})

    def _keep(self, path: Path, display_name: str | None, mime_type: str, source: str) -> GeminiFile:
        name = f"files/{new_id('')[:16]}"
        final = self.dir / name.removeprefix("files/")
        path.rename(final)
        stored = GeminiFile(name, final, final.stat().st_size, display_name, mime_type, time.time(), source)
        self.files[name] = stored
        return stored

    def _file(self, request: web.Request) -> GeminiFile | None:
        return self.files.get(f"files/{request.match_info['id']}")

    async def get_file(self, request: web.Request) -> web.Response:
        stored = self._file(request)
        if stored is None:
            return error(403, "PERMISSION_DENIED", "You do not have permission to access the File "
                         f"{request.match_info['id']} or it may not exist.")
        return _ok(stored.describe(_base(request)))

    async def list_files(self, request: web.Request) -> web.Response:
        return _page(request, sorted(self.files.values(), key=lambda f: f.created_at, reverse=True), "files",
                     lambda f: f.describe(_base(request)))

    async def delete_file(self, request: web.Request) -> web.Response:
        stored = self.files.pop(f"files/{request.match_info['id']}", None)
        if stored is None:
            return error(403, "PERMISSION_DENIED", f"You do not have permission to access the File "
                         f"{request.match_info['id']} or it may not exist.")
        stored.path.unlink(missing_ok=True)
        return _ok({})

    async def download(self, request: web.Request) -> web.StreamResponse:
        stored = self._file(request)
        if stored is None:
            return error(404, "NOT_FOUND", f"File {request.match_info['id']} not found.")
        if stored.source != "GENERATED":
            return error(400, "INVALID_ARGUMENT", "Only generated files can be downloaded.")
        if self.messy and stored.name not in self._cut:
            self._cut.add(stored.name)
            return await broken_off(request, stored.path.read_bytes())
        return web.FileResponse(stored.path, headers={"Content-Type": "application/octet-stream"})

    # -- the synchronous call ------------------------------------------------

    async def generate_content(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if not isinstance(body, dict) or not isinstance(body.get("contents"), list) or not body["contents"]:
            return error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified")
        # No custom_id here: the same body again is the same request retried.
        outcome = self.behaviour.decide("sync-" + hashlib.sha256(raw).hexdigest()[:32], raw, body, "gemini")
        if outcome.kind == "errored":
            return error(400, "INVALID_ARGUMENT", outcome.message)
        if outcome.kind != "ok":
            return error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        return _ok(_response(request.match_info["model"], outcome))

    # -- batches -------------------------------------------------------------

    async def create_job(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        try:
            batch = (orjson.loads(await request.read()) or {}).get("batch") or {}
        except (orjson.JSONDecodeError, AttributeError):
            return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        source = (batch.get("inputConfig") or {}).get("fileName")
        if model.startswith("emulate-reject"):
            return error(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta, or is not "
                         "supported for batchGenerateContent.")
        stored = self.files.get(source or "")
        if stored is None:
            return error(400, "INVALID_ARGUMENT", f"File {source} not found or not accessible.")
        running = sum(1 for job in self.jobs.values() if job.state in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"))
        if self.max_jobs and running >= self.max_jobs:
            self.busy_refusals += 1
            return error(429, "RESOURCE_EXHAUSTED", "You've exceeded the rate limit for concurrent batch "
                         "jobs. Please try again later.")
        job = GeminiJob(new_id("")[:20], model, str(batch.get("displayName") or ""), stored.name, time.time(),
                        _lines(stored.path))
        uris = (batch.get("webhookConfig") or {}).get("uris")
        job.webhook_uris = [u for u in uris if isinstance(u, str)] if isinstance(uris, list) else []
        self.jobs[job.id] = job
        self.recorder.record("gemini", job.name, [key for key, _, body in job.lines if key and body is not None])
        return _ok(self._operation(job, request))

    async def get_job(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None or time.time() - job.created_at < self.transient_404_s:
            return error(404, "NOT_FOUND", f"Batch batches/{request.match_info['id']} not found.")
        self._advance(job)
        return _ok(self._operation(job, request))

    async def list_jobs(self, request: web.Request) -> web.Response:
        newest = sorted(self.jobs.values(), key=lambda j: j.created_at, reverse=True)
        for job in newest:
            self._advance(job)
        return _page(request, newest, "operations", lambda j: self._operation(j, request))

    async def cancel_job(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return error(404, "NOT_FOUND", f"Batch batches/{request.match_info['id']} not found.")
        self._advance(job)
        if job.state in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
            job.cancel_requested = time.time()
        return _ok({})

    async def delete_job(self, request: web.Request) -> web.Response:
        if self.jobs.pop(request.match_info["id"], None) is None:
            return error(404, "NOT_FOUND", f"Batch batches/{request.match_info['id']} not found.")
        return _ok({})

    # -- time passing --------------------------------------------------------

    def announce_ended(self) -> None:
        """Each job created with ``webhookConfig``, once it ends: ``batch.succeeded`` or ``batch.failed`` to its
        URIs, signed with the project's secret (the ticker of ``emulator.webhooks`` calls this)."""
        if self.notifier is None:
            return
        for job in self.jobs.values():
            if not job.webhook_uris:
                continue
            self._advance(job)
            if job.state not in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
                uris, job.webhook_uris = job.webhook_uris, []
                kind = "batch.succeeded" if job.state == "BATCH_STATE_SUCCEEDED" else "batch.failed"
                self.notifier.announce(uris, self.notifier.gemini_secret, kind, {"name": job.name,
                                                                                   "state": job.state})

    def _advance(self, job: GeminiJob) -> None:
        now = time.time()
        if job.state == "BATCH_STATE_PENDING" and now - job.created_at >= min(0.2, self.batch_seconds / 10):
            job.state = "BATCH_STATE_RUNNING"
        if job.state != "BATCH_STATE_RUNNING":
            return
        if job.cancel_requested is not None:  # cancelling: it ends cancelled, a little later
            if now - job.cancel_requested < min(0.5, self.batch_seconds / 2):
                return
            done = int(len(job.lines) * min(1.0, (job.cancel_requested - job.created_at)
                                             / max(self.batch_seconds, 1e-9)))
            self._finish(job, now, done)
        elif now - job.created_at >= self.batch_seconds:
            self._finish(job, now, None)

    def _finish(self, job: GeminiJob, now: float, cancelled_after: int | None) -> None:
        written: list[bytes] = []
        expired = False
        ok = failed = 0
        for index, (key, raw, body) in enumerate(job.lines):
            if cancelled_after is not None and index >= cancelled_after:
                continue  # never ran: no line
            if key is None or body is None:
                failed += 1
                written.append(_error_line(key, 400, "INVALID_ARGUMENT",
                                           "Each line must be an object with a string key and a request object."))
                continue
            outcome = self.behaviour.decide(key, raw, body, "gemini")
            if outcome.kind == "ok":
                ok += 1
                written.append(orjson.dumps({"key": key, "response": _response(job.model, outcome)}))
            elif outcome.kind == "expired":
                expired = True
            else:
                failed += 1
                code, status = (400, "INVALID_ARGUMENT") if outcome.kind == "errored" else (500, "INTERNAL")
                written.append(_error_line(key, code, status, outcome.message))
        self._rng.shuffle(written)  # the real service is known to answer out of order
        if written:
            path = self.dir / f"out-{job.id}"
            path.write_bytes(b"\n".join(written) + b"\n")
            job.output_file = self._keep(path, f"batch-{job.id}-results", "application/jsonl", "GENERATED").name
        job.stats = {"successfulRequestCount": ok, "failedRequestCount": failed}
        job.ended_at = now
        job.state = ("BATCH_STATE_CANCELLED" if cancelled_after is not None else
                     "BATCH_STATE_EXPIRED" if expired else "BATCH_STATE_SUCCEEDED")

    def _operation(self, job: GeminiJob, request: web.Request) -> Json:
        total = len(job.lines)
        stats = {"requestCount": str(total), **{k: str(v) for k, v in job.stats.items()}}
        if job.ended_at is None:
            stats["pendingRequestCount"] = str(total)
        batch: Json = {
            "@type": _BATCH_TYPE, "name": job.name, "model": f"models/{job.model}", "displayName": job.display_name,
            "inputConfig": {"fileName": job.input_file}, "createTime": _rfc3339(job.created_at),
            "updateTime": _rfc3339(job.ended_at or job.created_at), "batchStats": stats, "state": job.state,
        }
        if job.ended_at is not None:
            batch["endTime"] = _rfc3339(job.ended_at)
            batch["output"] = {"responsesFile": job.output_file} if job.output_file else {}
        operation: Json = {"name": job.name, "metadata": batch, "done": job.ended_at is not None}
        if job.ended_at is not None:
            operation["response"] = {**batch, "@type": _BATCH_TYPE}
        return operation


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}{PREFIX}"


def _page(request: web.Request, rows: list[Any], name: str, describe: Any) -> web.Response:
    size = min(1000, int(request.query.get("pageSize") or 50))
    start = int(request.query.get("pageToken") or 0)
    page: Json = {name: [describe(row) for row in rows[start:start + size]]}
    if start + size < len(rows):
        page["nextPageToken"] = str(start + size)
    return _ok(page)


def _lines(path: Path) -> list[tuple[str | None, bytes, Json | None]]:
    lines: list[tuple[str | None, bytes, Json | None]] = []
    with path.open("rb") as data:
        for raw in data:
            if not raw.strip():
                continue
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:
                doc = None
            key = doc.get("key") if isinstance(doc, dict) and isinstance(doc.get("key"), str) else None
            body = doc.get("request") if isinstance(doc, dict) and isinstance(doc.get("request"), dict) else None
            if body is not None and not isinstance(body.get("contents"), list):
                body = None
            lines.append((key, raw, body))
    return lines


def _error_line(key: str | None, code: int, status: str, message: str) -> bytes:
    return orjson.dumps({"key": key, "error": {"code": code, "message": message, "status": status}})


def _response(model: str, outcome: Outcome) -> Json:
    """A ``GenerateContentResponse``: thoughts are counted apart from the candidates' tokens, and an answer that was
    all thinking has a content without parts."""
    written = outcome.output_tokens - outcome.reasoning_tokens
    usage = {"promptTokenCount": outcome.input_tokens, "candidatesTokenCount": written,
             "totalTokenCount": outcome.input_tokens + outcome.output_tokens,
             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": outcome.input_tokens}]}
    if outcome.reasoning_tokens:
        usage["thoughtsTokenCount"] = outcome.reasoning_tokens
    if outcome.cached.read:
        usage["cachedContentTokenCount"] = outcome.cached.read
    content: Json = {"parts": [{"text": outcome.text}], "role": "model"} if outcome.text else {"role": "model"}
    return {"candidates": [{"content": content, "finishReason": "MAX_TOKENS" if outcome.at_limit else "STOP",
                            "index": 0}],
            "usageMetadata": usage, "modelVersion": model, "responseId": new_id("")[:22]}
