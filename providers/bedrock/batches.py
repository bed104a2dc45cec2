"""AWS Bedrock batch inference: the input to S3, CreateModelInvocationJob, poll, the output from S3.

boto3 is synchronous, so every call runs in a worker thread. The input file is
uploaded from the spool file as it is (multipart for large files, never whole in
memory) and the output is read back in chunks. The job is created with the batch
key as both its name and its ``clientRequestToken``: a create sent again for the
same batch, after a timeout or a crash, returns the job created the first time.

Credentials, region and endpoints are boto3's own (``AWS_*`` variables, ``~/.aws``);
``AWS_ENDPOINT_URL_BEDROCK`` and ``AWS_ENDPOINT_URL_S3`` point it at the emulator.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Any, AsyncIterator

import boto3
import orjson
import structlog
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from providers.base import (
    CLOCK_SKEW_S,
    AccountRefused,
    BatchStatus,
    ProviderUnavailable,
    SpooledBatch,
    split_lines,
)
from providers.bedrock.errors import WORDS, said_by_boto
from providers.errors import meaning
from providers.bedrock.wire import RESULTS
from schemas import ErrorInfo

__all__ = ["BedrockBatches", "BedrockConfig", "ENDED"]

log = structlog.get_logger(__name__)

ENDED = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
#: A job that fails validation for holding fewer records than the account's minimum, in Bedrock's words.
_BELOW_MINIMUM = re.compile(r"less records \((\d+)\) than the required minimum of: (\d+)")
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class BedrockConfig:
    """What the adapter needs beyond AWS's own credentials: where the files go, the role, the window."""

    bucket: str
    role_arn: str
    prefix: str = ""
    region: str = ""  # empty: boto3's own (AWS_REGION, the profile)
    timeout_hours: int = 24


class BedrockBatches:
    """Adapter over boto3's ``bedrock`` and ``s3`` clients."""

    name = "bedrock"

    def __init__(self, config: BedrockConfig, session: boto3.session.Session | None = None) -> None:
        # What this worker lacks to reach Bedrock is the account's refusal: the batch waits with an alert.
        if not config.bucket or not config.role_arn:
            raise AccountRefused("bedrock needs TIERLINE_BEDROCK_BUCKET and TIERLINE_BEDROCK_ROLE_ARN: "
                                 "the S3 bucket of the jobs' files and the IAM role Bedrock reads them with")
        session = session or boto3.session.Session(region_name=config.region or None)
        if session.get_credentials() is None:  # a client made now would stay unsigned
            raise AccountRefused("no AWS credentials: give the worker AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                                 "AWS_PROFILE, or a role")
        # Retrying a create is safe here: the clientRequestToken makes it return the same job.
        retrying = Config(retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=16)
        try:
            self._bedrock = session.client("bedrock", config=retrying)
            self._s3 = session.client("s3", config=retrying)
        except BotoCoreError as exc:  # no region, most likely
            raise AccountRefused(f"bedrock: {exc} (set TIERLINE_BEDROCK_REGION or AWS_REGION)") from exc
        self._bucket = config.bucket
        self._prefix = config.prefix.strip("/")
        self._role_arn = config.role_arn
        self._timeout_hours = config.timeout_hours
        self.result_format = RESULTS

    def _key(self, batch_key: str, name: str) -> str:
        return "/".join(part for part in (self._prefix, batch_key, name) if part)

    async def submit(self, batch: SpooledBatch) -> str:
        assert batch.group.model is not None and batch.group.endpoint is not None
        input_key, output = self._key(batch.key, "input.jsonl"), self._key(batch.key, "output")
        await _call(self._s3.upload_file, str(batch.input_path), self._bucket, input_key, creating=True)
        created = await _call(
            self._bedrock.create_model_invocation_job, creating=True,
            jobName=batch.key,
            clientRequestToken=batch.key,
            roleArn=self._role_arn,
            modelId=batch.group.model,
            modelInvocationType=batch.group.endpoint,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{self._bucket}/{input_key}",
                                                   "s3InputFormat": "JSONL"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{self._bucket}/{output}/"}},
            timeoutDurationInHours=self._timeout_hours,
        )
        return str(created["jobArn"])

    async def find(self, batch: SpooledBatch, since: float, claimed: set[str]) -> str | None:
        # The job is named after the batch key. (Creating it again would return it too, by its
        # clientRequestToken, for as long as Bedrock keeps the token.)
        answer = await _call(self._bedrock.list_model_invocation_jobs, nameContains=batch.key,
                             submitTimeAfter=datetime.fromtimestamp(since - CLOCK_SKEW_S, timezone.utc))
        for job in answer.get("invocationJobSummaries", ()):
            if job.get("jobName") == batch.key and job["jobArn"] not in claimed:
                return str(job["jobArn"])
        return None

    async def status(self, batch_id: str) -> BatchStatus:
        job = await _call(self._bedrock.get_model_invocation_job, jobIdentifier=batch_id)
        state = job["status"]
        counts = {name: job[field] for name, field in _COUNTS if job.get(field) is not None}
        rejection = (job.get("message") or "the job failed") if state == "Failed" else None
        expires = job.get("jobExpirationTime")
        short = _BELOW_MINIMUM.search(rejection or "")
        running = state == "InProgress" and counts.get("total") and "processed" in counts
        return BatchStatus(state, state in ENDED, counts, rejection, expires.timestamp() if expires else None,
                           _UNRUN.get(state), cancelled=state == "Stopped",
                           below_minimum=int(short.group(2)) if short else None,
                           progress=(counts["processed"], counts["total"]) if running else None)

    async def result_lines(self, batch_id: str) -> AsyncIterator[list[bytes]]:
        """Every ``*.jsonl.out`` file under the job's output folder; ``manifest.json.out`` is logged."""
        job = await _call(self._bedrock.get_model_invocation_job, jobIdentifier=batch_id)
        bucket, prefix = _split_s3_uri(job["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"])
        folder = f"{prefix.rstrip('/')}/{batch_id.rsplit('/', 1)[-1]}/"
        keys = await self._list(bucket, folder)
        for key in keys:
            if key.endswith(".jsonl.out"):
                async for run in split_lines(self._chunks(bucket, key)):
                    yield run
        if manifest := next((k for k in keys if k.endswith("manifest.json.out")), None):
            body = b"".join([chunk async for chunk in self._chunks(bucket, manifest)])
            try:
                log.info("bedrock_manifest", batch_id=batch_id, manifest=orjson.loads(body))
            except orjson.JSONDecodeError:
                log.warning("bedrock_manifest_unreadable", batch_id=batch_id, manifest=body[:500])

    async def discard_input(self, batch_id: str) -> None:
        pass  # the input stays in the account's own bucket, beside the output, under its lifecycle rules

    async def cancel(self, batch_id: str) -> None:
        await _call(self._bedrock.stop_model_invocation_job, jobIdentifier=batch_id)

    async def close(self) -> None:
        self._bedrock.close()
        self._s3.close()

    async def _list(self, bucket: str, prefix: str) -> list[str]:
        def every_key() -> list[str]:
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return sorted(obj["Key"] for page in pages for obj in page.get("Contents", ()))
        keys: list[str] = await _call(every_key)
        return keys

    async def _chunks(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        """One S3 object, a megabyte at a time."""
        body = (await _call(self._s3.get_object, Bucket=bucket, Key=key))["Body"]
        try:
            while chunk := await _call(body.read, _CHUNK):
                yield chunk
        finally:
            body.close()


#: Records a stopped or timed-out job never ran are simply absent from its output.
_UNRUN = {"Stopped": ErrorInfo(type="batch_cancelled", message="the job was stopped before this record ran"),
          "Expired": ErrorInfo(type="expired",
                               message="the job reached its timeoutDurationInHours before this record ran")}

#: A record's numeric ``errorCode`` named as Bedrock's runtime names the error it stands for.
_COUNTS = (("total", "totalRecordCount"), ("processed", "processedRecordCount"),
           ("succeeded", "successRecordCount"), ("errored", "errorRecordCount"))


async def _call(function: Any, *args: Any, creating: bool = False, **kwargs: Any) -> Any:
    """A boto3 call in a worker thread, its failures as ours (``creating``: it uploads or creates a job)."""
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except ClientError as exc:
        raise meaning(said_by_boto(exc), WORDS, creating=creating) from exc
    except S3UploadFailedError as exc:  # boto3's upload wraps S3's answer
        cause = exc.__cause__ or exc.__context__
        raise (meaning(said_by_boto(cause), WORDS, creating=creating) if isinstance(cause, ClientError)
               else ProviderUnavailable(str(exc))) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:  # nothing to sign the request with
        raise AccountRefused(f"no AWS credentials: {exc}") from exc
    except BotoCoreError as exc:  # no answer: connection refused, timed out, ...
        raise ProviderUnavailable(str(exc)) from exc


def _split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


