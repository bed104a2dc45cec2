"""AWS Bedrock's batch inference control plane, as boto3's ``bedrock`` client speaks it (rest-json).

``POST /model-invocation-job``, ``GET /model-invocation-job/{id}``, ``GET /model-invocation-jobs``
and ``POST /model-invocation-job/{id}/stop``; errors as ``{"message"}`` with the exception's
name in ``x-amzn-ErrorType``. A job reads its JSONL input from, and writes its ``*.jsonl.out``
and ``manifest.json.out`` to, a real S3-compatible server, through boto3 (point it there with
``AWS_ENDPOINT_URL_S3``).

Over ``batch_seconds`` a job goes Submitted, Validating, Scheduled, InProgress and ends
Completed, PartiallyCompleted (some records errored) or Expired (``#emulate:expired`` records
are left out of the output); it ends Failed at validation when its input cannot be read or
parsed, holds fewer records than ``min_records`` or more than ``max_records``, or its model is
``emulate-reject...``. A stopped job goes Stopping, then Stopped with the records it ran so far.
With ``max_jobs``, a create beyond that many jobs in progress for one model is refused with
``ServiceQuotaExceededException``, as the account's quota does.
The same ``clientRequestToken`` with the same request returns the same job.
"""

from __future__ import annotations

import asyncio
import random
import re
import string
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import boto3
import orjson
from aiohttp import web
from botocore.exceptions import BotoCoreError, ClientError

from emulator.answers import anthropic_content, converse_content
from emulator.behaviour import Behaviour, Outcome
from emulator.ids import new_id
from emulator.recorder import Recorder

__all__ = ["BedrockEmulator", "checked", "error", "output"]

Json = dict[str, Any]

ACCOUNT = "123456789012"
JOB_NAME = re.compile(r"[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9+\-.]){0,63}")
ROLE_ARN = re.compile(r"arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+")
REGION = re.compile(r"Credential=[^/]+/[0-9]{8}/([a-z0-9-]+)/bedrock/")
#: Where each phase of a job's life starts, as a share of ``batch_seconds``.
PHASES = (("Submitted", 0.0), ("Validating", 0.1), ("Scheduled", 0.2), ("InProgress", 0.3))
ENDED = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
STOP_TAKES_S = 0.5


def error(status: int, kind: str, message: str) -> web.Response:
    """botocore's rest-json error shape: the exception in a header, the message in the body."""
    return web.Response(body=orjson.dumps({"message": message}), status=status, content_type="application/json",
                        headers={"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/",
                                 "x-amzn-RequestId": new_id("")})


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Job:
    id: str
    arn: str
    request: Json
    submitted_at: float
    records: list[tuple[str, bytes, Json]] = field(default_factory=list)  # recordId, raw line, modelInput
    problem: str | None = None  # why validation fails, if it does
    loaded: bool = False  # its input has been read
    ending: bool = False  # its records are being run and its output written
    status: str = "Submitted"
    message: str | None = None
    ended_at: float | None = None
    stop_at: float | None = None
    counts: dict[str, int] = field(default_factory=dict)


class BedrockEmulator:
    """In-memory jobs of one emulated AWS account; files in the S3 server it is pointed at."""

    def __init__(self, behaviour: Behaviour, batch_seconds: float, recorder: Recorder,
                 min_records: int = 100, max_records: int = 50_000, max_jobs: int = 0,
                 transient_404_s: float = 0.0) -> None:
        self.behaviour = behaviour
        self.batch_seconds = batch_seconds
        self.recorder = recorder
        self.min_records = min_records
        self.max_records = max_records
        self.max_jobs = max_jobs  # jobs in progress per model (0: no limit)
        self.transient_404_s = transient_404_s  # a job just created is not found for this long
        self.jobs: dict[str, Job] = {}
        self.tokens: dict[str, str] = {}  # clientRequestToken → job id
        self._s3: Any = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/model-invocation-job", self.create),
            web.get("/model-invocation-jobs", self.list_all),
            web.post(r"/model-invocation-job/{ident:.+}/stop", self.stop),
            web.get(r"/model-invocation-job/{ident:.+}", self.get),
        ]

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = boto3.client("s3")
        return self._s3

    async def create(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return error(400, "ValidationException", "The request body is not valid JSON.")
        problem = _invalid_request(body)
        if problem:
            return error(400, "ValidationException", problem)
        token = body.get("clientRequestToken")
        if token in self.tokens:
            job = self.jobs[self.tokens[token]]
            if {k: v for k, v in job.request.items() if k != "clientRequestToken"} != \
                    {k: v for k, v in body.items() if k != "clientRequestToken"}:
                return error(400, "ValidationException",
                             "The clientRequestToken was already used for a request with other parameters.")
            return self._json({"jobArn": job.arn})
        if self.max_jobs and await self._in_progress(body["modelId"]) >= self.max_jobs:
            return error(400, "ServiceQuotaExceededException", f"The number of jobs in progress for "
                         f"{body['modelId']} is at its limit of {self.max_jobs}; try again when one has ended.")
        signed = REGION.search(request.headers.get("authorization", ""))
        region = signed.group(1) if signed else "us-east-1"
        job_id = "".join(random.choices(string.ascii_lowercase + string.digits, k=12))
        job = Job(job_id, f"arn:aws:bedrock:{region}:{ACCOUNT}:model-invocation-job/{job_id}", body, time.time())
        self.jobs[job_id] = job
        if token:  # known before the input is read: a create sent again meanwhile gets this job
            self.tokens[token] = job_id
        job.records, job.problem = await asyncio.to_thread(self._read_input, body)
        job.loaded = True
        self.recorder.record("bedrock", job.arn, [r[0] for r in job.records])
        return self._json({"jobArn": job.arn})

    async def get(self, request: web.Request) -> web.Response:
        job = await self._find(request)
        if job is None or time.time() - job.submitted_at < self.transient_404_s:
            return self._not_found(request)
        return self._json(self._describe(job))

    async def list_all(self, request: web.Request) -> web.Response:
        query = request.query
        jobs = sorted(self.jobs.values(), key=lambda j: j.submitted_at, reverse=query.get("sortOrder") != "Ascending")
        for job in jobs:
            await self._advance(job)
        if name := query.get("nameContains"):
            jobs = [j for j in jobs if name in j.request["jobName"]]
        if status := query.get("statusEquals"):
            jobs = [j for j in jobs if j.status == status]
        if after := query.get("submitTimeAfter"):
            jobs = [j for j in jobs if j.submitted_at > _parse_time(after)]
        if before := query.get("submitTimeBefore"):
            jobs = [j for j in jobs if j.submitted_at < _parse_time(before)]
        start = int(query.get("nextToken", 0))
        limit = min(1000, int(query.get("maxResults", 1000)))
        page = jobs[start:start + limit]
        answer: Json = {"invocationJobSummaries": [self._describe(j) for j in page]}
        if start + limit < len(jobs):
            answer["nextToken"] = str(start + limit)
        return self._json(answer)

    async def stop(self, request: web.Request) -> web.Response:
        job = await self._find(request)
        if job is None:
            return self._not_found(request)
        if job.status in ENDED or job.stop_at is not None:
            return error(400, "ValidationException", f"The job is {job.status}: it cannot be stopped.")
        job.stop_at = time.time()
        job.status = "Stopping"
        return self._json({})

    # -- a job's life ----------------------------------------------------------------

    def _read_input(self, request: Json) -> tuple[list[tuple[str, bytes, Json]], str | None]:
        bucket, key = _split(request["inputDataConfig"]["s3InputDataConfig"]["s3Uri"])
        try:
            data = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            return [], f"Unable to read the input s3://{bucket}/{key}: {exc}"
        records: list[tuple[str, bytes, Json]] = []
        for number, raw in enumerate(data.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                line = orjson.loads(raw)
                records.append((str(line["recordId"]), raw, line["modelInput"]))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                return records, f"Invalid input at line {number}: each line must be a JSON object with " \
                                "recordId and modelInput"
        if request["modelId"].startswith("emulate-reject"):
            return records, f"The provided model identifier {request['modelId']} is invalid."
        if len(records) < self.min_records:
            return records, f"Batch job contains less records ({len(records)}) than the required minimum of: " \
                            f"{self.min_records}"
        if len(records) > self.max_records:
            return records, f"Batch job contains more records ({len(records)}) than the allowed maximum of: " \
                            f"{self.max_records}"
        return records, None

    async def _in_progress(self, model_id: str) -> int:
        jobs = [job for job in self.jobs.values() if job.request["modelId"] == model_id]
        for job in jobs:
            await self._advance(job)
        return sum(job.status not in ENDED for job in jobs)

    async def _find(self, request: web.Request) -> Job | None:
        job = self.jobs.get(request.match_info["ident"].rsplit("/", 1)[-1])
        if job is not None:
            await self._advance(job)
        return job

    async def _advance(self, job: Job) -> None:
        if job.status in ENDED or not job.loaded or job.ending:
            return
        now = time.time()
        if job.stop_at is not None:
            if now - job.stop_at >= STOP_TAKES_S:
                share = (job.stop_at - job.submitted_at) / max(self.batch_seconds, 1e-9) - PHASES[-1][1]
                ran = int(len(job.records) * min(1.0, max(0.0, share / (1 - PHASES[-1][1]))))
                await self._end(job, now, ran)
            return
        share = (now - job.submitted_at) / max(self.batch_seconds, 1e-9)
        if job.problem is not None and share >= PHASES[2][1]:
            job.status, job.message, job.ended_at = "Failed", job.problem, now
        elif share >= 1.0:
            await self._end(job, now, None)
        else:
            job.status = [name for name, start in PHASES if share >= start][-1]

    async def _end(self, job: Job, now: float, ran: int | None) -> None:
        """Run the records (the first ``ran`` of a stopped job) and write the output files."""
        job.ending = True  # once: requests meanwhile see the job as it was
        lines: list[bytes] = []
        counts = {"total": len(job.records), "processed": 0, "success": 0, "error": 0, "in": 0, "out": 0}
        expired = False
        converse = job.request.get("modelInvocationType") == "Converse"
        for index, (record_id, raw, model_input) in enumerate(job.records):
            if ran is not None and index >= ran:
                continue
            outcome = checked(self.behaviour.decide(record_id, raw, model_input), model_input,
                              job.request["modelId"], converse)
            if outcome.kind == "expired":
                expired = True
                continue
            line: Json = {"recordId": record_id, "modelInput": model_input}
            counts["processed"] += 1
            if outcome.kind == "ok":
                line["modelOutput"] = output(job.request["modelId"], outcome, converse, model_input)
                counts["success"] += 1
                counts["in"] += outcome.input_tokens
                counts["out"] += outcome.output_tokens
            else:
                status = 400 if outcome.kind == "errored" else 503
                line["error"] = {"errorCode": status, "errorMessage": outcome.message}
                counts["error"] += 1
            lines.append(orjson.dumps(line))
        await asyncio.to_thread(self._write_output, job, lines, counts)
        job.counts = counts
        if ran is not None:
            job.status = "Stopped"
        elif expired:
            job.status, job.message = "Expired", "The job reached its timeout before every record ran."
        else:
            job.status = "PartiallyCompleted" if counts["error"] else "Completed"
        job.ended_at = now

    def _write_output(self, job: Job, lines: list[bytes], counts: dict[str, int]) -> None:
        bucket, prefix = _split(job.request["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"])
        folder = f"{prefix.rstrip('/')}/{job.id}/" if prefix.strip("/") else f"{job.id}/"
        name = job.request["inputDataConfig"]["s3InputDataConfig"]["s3Uri"].rsplit("/", 1)[-1]
        self.s3.put_object(Bucket=bucket, Key=f"{folder}{name}.out", Body=b"\n".join(lines) + b"\n" if lines else b"")
        manifest = {"totalRecordCount": counts["total"], "processedRecordCount": counts["processed"],
                    "successRecordCount": counts["success"], "errorRecordCount": counts["error"],
                    "inputTokenCount": counts["in"], "outputTokenCount": counts["out"]}
        self.s3.put_object(Bucket=bucket, Key=f"{folder}manifest.json.out", Body=orjson.dumps(manifest))

    def _describe(self, job: Job) -> Json:
        request = job.request
        described: Json = {
            "jobArn": job.arn, "jobName": request["jobName"], "modelId": request["modelId"],
            "roleArn": request["roleArn"], "status": job.status,
            "submitTime": _iso(job.submitted_at), "lastModifiedTime": _iso(job.ended_at or job.submitted_at),
            "inputDataConfig": request["inputDataConfig"], "outputDataConfig": request["outputDataConfig"],
            "timeoutDurationInHours": request.get("timeoutDurationInHours", 168),
            "jobExpirationTime": _iso(job.submitted_at + 3600 * request.get("timeoutDurationInHours", 168)),
            "modelInvocationType": request.get("modelInvocationType", "InvokeModel"),
        }
        for name, value in (("clientRequestToken", request.get("clientRequestToken")), ("message", job.message),
                            ("endTime", _iso(job.ended_at))):
            if value is not None:
                described[name] = value
        if job.counts:
            described.update(totalRecordCount=job.counts["total"], processedRecordCount=job.counts["processed"],
                             successRecordCount=job.counts["success"], errorRecordCount=job.counts["error"])
        elif job.status in ("Scheduled", "InProgress", "Stopping"):
            described.update(totalRecordCount=len(job.records), processedRecordCount=0)
        return described

    def _not_found(self, request: web.Request) -> web.Response:
        return error(404, "ResourceNotFoundException", f"Could not find job {request.match_info['ident']}.")

    @staticmethod
    def _json(body: Json) -> web.Response:
        return web.Response(body=orjson.dumps(body), content_type="application/json")


def _invalid_request(body: Any) -> str | None:
    """What botocore would not catch on its side but the service refuses at once."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    for name in ("jobName", "roleArn", "modelId", "inputDataConfig", "outputDataConfig"):
        if not body.get(name):
            return f"1 validation error detected: Value null at '{name}' failed to satisfy constraint: " \
                   "Member must not be null"
    if not JOB_NAME.fullmatch(body["jobName"]):
        return "jobName must match [a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\\+\\-\\.]){0,63}"
    if not ROLE_ARN.fullmatch(body["roleArn"]):
        return "roleArn must be an IAM role ARN"
    hours = body.get("timeoutDurationInHours", 168)
    if not 24 <= hours <= 168:
        return "timeoutDurationInHours must be from 24 to 168"
    try:
        for config, inner in (("inputDataConfig", "s3InputDataConfig"), ("outputDataConfig", "s3OutputDataConfig")):
            if not body[config][inner]["s3Uri"].startswith("s3://"):
                return f"{config}.{inner}.s3Uri must be an s3:// URI"
    except (KeyError, TypeError, AttributeError):
        return "inputDataConfig.s3InputDataConfig.s3Uri and outputDataConfig.s3OutputDataConfig.s3Uri are required"
    return None


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def checked(outcome: Outcome, model_input: Json, model_id: str, converse: bool) -> Outcome:
    """A record the model would refuse (a body of the wrong shape) errors whatever was decided."""
    if outcome.kind != "ok":
        return outcome
    if converse and not isinstance(model_input.get("messages"), list):
        return Outcome("errored", message="ValidationException: a Converse request needs messages")
    if not converse and "anthropic." in model_id:
        for name, kind in (("anthropic_version", str), ("max_tokens", int), ("messages", list)):
            if not isinstance(model_input.get(name), kind):
                return Outcome("errored", message=f"ValidationException: {name}: field required")
    return outcome


def output(model_id: str, outcome: Outcome, converse: bool, body: Json) -> Json:
    """The model's answer in its own InvokeModel shape (Claude's Messages), or Converse's."""
    if not converse and "anthropic." in model_id:
        content, stop_reason = anthropic_content(body, outcome)
        return {"id": new_id("msg_bdrk_"), "type": "message", "role": "assistant",
                "model": model_id.rsplit("/", 1)[-1].split("anthropic.", 1)[-1].split("-v", 1)[0],
                "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": {"input_tokens": outcome.input_tokens, "output_tokens": outcome.output_tokens}}
    content, stop_reason = converse_content(body, outcome)
    return {"output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason,
            "usage": {"inputTokens": outcome.input_tokens, "outputTokens": outcome.output_tokens,
                      "totalTokens": outcome.input_tokens + outcome.output_tokens},
            "metrics": {"latencyMs": 100}}
