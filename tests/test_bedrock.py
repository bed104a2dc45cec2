"""Bedrock batch inference through boto3: the adapter against the emulator and moto's S3 server.

The same batch-tier tests run Bedrock items too (tests/test_batch_tier.py and the kill tests);
these cover what only Bedrock has: files in S3, the job's statuses, the idempotency token, the
minimum records per job.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import boto3
import orjson
import pytest

from core.limits import BatchGroup
from core.validation import Accepted, validate
from providers import AccountRefused, BatchNotFound, make_provider
from providers.base import BatchStatus, ItemOutcome, SpooledBatch
from streams.local.stack import BUCKET, embedded_env
from streams.settings import Settings
from streams.state.spool import Spool
from streams.local.workload import BEDROCK_CLAUDE, BEDROCK_NOVA, make_items
from tests.support import (
    account,
    follow,
    log_events,
    publish_items,
    read_results,
    recorded_batches,
    slow_emulator_workers,
    submissions,
    wait_for_log,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, emulator_port: int, s3_port: int, tmp_path: Path) -> Settings:
    """boto3 pointed at the emulator and the S3 server, as a worker's environment does it."""
    env = embedded_env(0, emulator_port, tmp_path, s3_port)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env(env)


def spool_batch(tmp_path: Path, items: list[dict], key: str) -> SpooledBatch:
    """Items spooled as the windowing agent does: one Bedrock job's input."""
    spool = Spool(tmp_path / "spool")
    accepted = [validate(orjson.dumps(item), Settings().catalogue) for item in items]
    assert all(isinstance(a, Accepted) for a in accepted)
    for a in accepted:
        spool.append(key, a.line, b"{}")  # type: ignore[union-attr]
    group: BatchGroup = accepted[0].group  # type: ignore[union-attr]
    size = sum(len(a.line) + 1 for a in accepted)  # type: ignore[union-attr]
    return spool.finish(key, group, len(items), size)


async def run_job(settings: Settings, batch: SpooledBatch) -> tuple[str, list[BatchStatus], list[ItemOutcome]]:
    """Submit, poll until ended, read the results: what the submitter and poller do."""
    provider = make_provider("bedrock", settings)
    try:
        job_arn = await provider.submit(batch)
        seen = [await provider.status(job_arn)]
        while not seen[-1].ended:
            await asyncio.sleep(0.2)
            seen.append(await provider.status(job_arn))
        outcomes = await read_results(provider, job_arn) if not seen[-1].rejection else []
        return job_arn, seen, outcomes
    finally:
        await provider.close()


def output_keys(s3_port: int, job_arn: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="tierline/")
    job_id = job_arn.rsplit("/", 1)[-1]
    return sorted(o["Key"] for o in listed.get("Contents", ()) if job_id in o["Key"])


def bedrock_items(n: int, prefix: str, flaky: int = 0, errored: int = 0) -> list[dict]:
    return make_items(n, prefix, flaky, errored, providers=("bedrock",))


def test_a_job_runs_through_its_statuses_and_every_record_comes_back(settings, s3_port, tmp_path) -> None:  # type: ignore[no-untyped-def]
    items = [i for i in bedrock_items(40, "br-ok") if "invocation" not in i]  # InvokeModel only: one job
    batch = spool_batch(tmp_path, items, "tl-bedrock-okjob")
    job_arn, seen, outcomes = asyncio.run(run_job(settings, batch))
    assert job_arn.startswith("arn:aws:bedrock:us-east-1:") and ":model-invocation-job/" in job_arn
    statuses = [s.status for s in seen]
    assert statuses[-1] == "Completed" and "InProgress" in statuses
    assert seen[-1].counts == {"total": len(items), "processed": len(items), "succeeded": len(items), "errored": 0}
    assert seen[-1].expires_at is not None  # jobExpirationTime: submit time + timeoutDurationInHours
    assert sorted(o.custom_id for o in outcomes) == sorted(i["custom_id"] for i in items)
    for outcome in outcomes:
        assert outcome.error is None and outcome.response["type"] == "message"
        assert outcome.usage and outcome.usage["output_tokens"] > 0
    keys = output_keys(s3_port, job_arn)
    assert [k.rsplit("/", 1)[-1] for k in keys] == ["input.jsonl.out", "manifest.json.out"]


def test_errored_records_make_the_job_partially_completed(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    items = [i for i in bedrock_items(30, "br-part", flaky=3, errored=6) if "invocation" not in i]
    batch = spool_batch(tmp_path, items, "tl-bedrock-partjob")
    _arn, seen, outcomes = asyncio.run(run_job(settings, batch))
    assert seen[-1].status == "PartiallyCompleted"
    by_id = {o.custom_id: o for o in outcomes}
    errored = [i["custom_id"] for i in items if "#emulate:errored" in str(i["params"])]
    flaky = [i["custom_id"] for i in items if "#emulate:flaky" in str(i["params"])]
    assert errored and flaky
    for cid in errored:
        assert by_id[cid].error is not None and not by_id[cid].retryable  # 400: the request itself
    for cid in flaky:
        assert by_id[cid].error is not None and by_id[cid].retryable  # 503: try again
    assert seen[-1].counts["errored"] == len(errored) + len(flaky)


def test_a_job_that_fails_validation_is_a_rejection_with_bedrocks_message(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    items = [dict(i, model="emulate-reject-model") for i in bedrock_items(5, "br-rej")]
    batch = spool_batch(tmp_path, items, "tl-bedrock-rejjob")
    _arn, seen, _ = asyncio.run(run_job(settings, batch))
    assert seen[-1].status == "Failed" and seen[-1].ended
    assert "model identifier" in (seen[-1].rejection or "")


def test_creating_the_same_batch_again_returns_the_job_created_before(settings, emulator_port, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """As after a crash between the create call and recording its answer: the token makes it one job."""
    batch = spool_batch(tmp_path, bedrock_items(9, "br-idem"), "tl-bedrock-idemjob")

    async def twice() -> tuple[str, str, str | None]:
        provider = make_provider("bedrock", settings)
        try:
            first = await provider.submit(batch)
            again = await provider.submit(batch)
            found = await provider.find(batch, since=0.0, claimed=set())
            return first, again, found
        finally:
            await provider.close()

    first, again, found = asyncio.run(twice())
    assert first == again == found
    assert [job["id"] for job in recorded_batches(emulator_port)].count(first) == 1


def test_a_stopped_job_returns_what_ran_and_says_the_rest_never_did(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    items = bedrock_items(20, "br-stop")
    batch = spool_batch(tmp_path, [i for i in items if "invocation" not in i], "tl-bedrock-stopjob")

    async def stopped() -> tuple[BatchStatus, list[ItemOutcome]]:
        provider = make_provider("bedrock", settings)
        try:
            job_arn = await provider.submit(batch)
            await provider.cancel(job_arn)
            while not (status := await provider.status(job_arn)).ended:
                await asyncio.sleep(0.1)
            return status, await read_results(provider, job_arn)
        finally:
            await provider.close()

    status, outcomes = asyncio.run(stopped())
    assert status.status == "Stopped"
    assert len(outcomes) < batch.count
    assert status.unrun is not None and status.unrun.type == "batch_cancelled"


def test_without_a_bucket_and_role_bedrock_says_what_to_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The account's refusal, not the batch's: its items wait, with an alert, until the worker is set up.
    with pytest.raises(AccountRefused, match="TIERLINE_BEDROCK_BUCKET and TIERLINE_BEDROCK_ROLE_ARN"):
        make_provider("bedrock", Settings())


@pytest.fixture(scope="module")
def strict_workers(broker_port: int, s3_port: int, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Workers against an emulator holding Bedrock's default minimum of 100 records per job."""
    # The last --bedrock-min-records given counts.
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, 1, "--bedrock-min-records", "100") as pool:
        yield pool


def test_a_group_below_the_minimum_waits_for_more_items_then_goes_as_one_job(strict_workers) -> None:  # type: ignore[no-untyped-def]
    env = strict_workers.env(TIERLINE_BEDROCK_MIN_RECORDS="100", TIERLINE_UNDERFILLED_WAIT_S="120")
    worker = strict_workers.start(env)
    settings = Settings.from_env(env)
    items = [i for i in bedrock_items(140, "br-pad") if "invocation" not in i]  # 105 InvokeModel items
    publish_items(settings, items[:60])
    wait_for_log(worker, "batch_opened")
    time.sleep(2 * float(env["TIERLINE_BATCH_MAX_WAIT_S"]))
    assert not log_events(worker, "batch_closed")  # 60 items: below the minimum, it waits
    publish_items(settings, items[60:])  # they pad the batch past the minimum
    ids = {i["custom_id"] for i in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=240))
    assert set(progress.results) == ids
    assert len({e[0]["batch_id"] for e in progress.results.values()}) == 1


def test_a_group_that_never_reaches_the_minimum_is_called_item_by_item(strict_workers, emulator_port) -> None:  # type: ignore[no-untyped-def]
    """No job is created; each item goes through InvokeModel or Converse at full price, saying why."""
    env = strict_workers.env(TIERLINE_BEDROCK_MIN_RECORDS="100", TIERLINE_UNDERFILLED_WAIT_S="2")
    strict_workers.start(env)
    settings = Settings.from_env(env)
    items = bedrock_items(12, "br-few", flaky=2, errored=2)  # both invocations: two groups, both short
    publish_items(settings, items)
    ids = {i["custom_id"] for i in items}
    errored = {i["custom_id"] for i in items if "#emulate:errored" in str(i["params"])}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=120))
    assert set(progress.results) == ids - errored
    assert {i.get("invocation") for i in items} == {None, "converse"}  # Claude by InvokeModel, Nova by Converse
    for [result] in progress.results.values():
        assert result["tier"] == "async" and result["batch_id"] is None
        assert any(r.startswith("below_minimum: only") and "needs at least 100" in r for r in result["route"])
        assert result["model"] in (BEDROCK_CLAUDE, BEDROCK_NOVA)
        assert result["cost_usd"] == result["realtime_usd"] > 0  # full price: no batch discount
    for cid in errored:
        [failure] = progress.failures[cid]
        assert failure["final"] and failure["error"]["type"] == "ValidationException"
    assert not any(cid in job["custom_ids"] for job in recorded_batches(emulator_port) for cid in ids)


def test_with_the_fallback_off_a_group_that_never_reaches_the_minimum_fails_saying_why(strict_workers) -> None:  # type: ignore[no-untyped-def]
    env = strict_workers.env(TIERLINE_BEDROCK_MIN_RECORDS="100", TIERLINE_UNDERFILLED_WAIT_S="2",
                             TIERLINE_BEDROCK_SYNC_FALLBACK="false")
    strict_workers.start(env)
    settings = Settings.from_env(env)
    items = [{"custom_id": f"br-off-{n}", "provider": "bedrock", "model": BEDROCK_CLAUDE,
              "params": {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 16,
                         "messages": [{"role": "user", "content": "hi"}]}} for n in range(7)]
    publish_items(settings, items)
    ids = {i["custom_id"] for i in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=120))
    assert not progress.results
    for cid in ids:
        [failure] = progress.failures[cid]
        assert failure["final"] and failure["batch_id"] is None
        assert failure["error"]["type"] == "below_minimum_records"
        assert "at least 100" in failure["error"]["message"]


def test_bedrock_items_that_need_another_tier_are_called_synchronously(start_worker) -> None:  # type: ignore[no-untyped-def]
    settings = start_worker()
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 16, "messages": [{"role": "user", "content": "x"}]}
    waiting = {"custom_id": "br-waiting", "provider": "bedrock", "model": BEDROCK_CLAUDE, "params": body,
               "user_waiting": True}
    asked = {"custom_id": "br-async", "provider": "bedrock", "model": BEDROCK_NOVA, "invocation": "converse",
             "params": {"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "tier": "async"}
    no_model = {"custom_id": "br-nomodel", "provider": "bedrock", "params": body}
    publish_items(settings, [waiting, asked, no_model])
    progress = asyncio.run(follow(settings, lambda p: len(p.results) >= 2 and p.dead, timeout=60))
    assert progress.results["br-waiting"][0]["tier"] == "realtime"
    assert progress.results["br-waiting"][0]["response"]["type"] == "message"  # Claude's own shape
    assert progress.results["br-async"][0]["tier"] == "async"
    assert progress.results["br-async"][0]["response"]["output"]["message"]["role"] == "assistant"  # Converse's
    assert [letter["reason"] for letter in progress.dead] == ["missing_model"]


def test_records_a_job_left_out_are_retried_one_by_one(start_worker, emulator_port) -> None:  # type: ignore[no-untyped-def]
    """An Expired job's output lacks the records it never ran: each is retried alone, then final."""
    settings = start_worker(TIERLINE_MAX_ATTEMPTS="2")
    items = [i for i in bedrock_items(8, "br-left") if "invocation" not in i]
    for item in items[:2]:
        item["params"]["messages"][0]["content"] += " #emulate:expired"
    publish_items(settings, items)
    ids = {i["custom_id"] for i in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=120))
    assert set(progress.results) == ids - {i["custom_id"] for i in items[:2]}
    for item in items[:2]:
        first, last = progress.failures[item["custom_id"]]
        assert first["error"]["type"] == "expired" and first["retryable"] and not first["final"]
        assert last["attempt"] == 2 and last["final"]
    counts = submissions(emulator_port)
    assert [counts[i["custom_id"]] for i in items] == [2, 2] + [1] * (len(items) - 2)


def test_jobs_beyond_the_accounts_quota_wait_for_room_instead_of_failing(broker_port, s3_port,  # type: ignore[no-untyped-def]
                                                                        tmp_path_factory) -> None:
    """One job in progress per model at a time: the next ones are created as each ends."""
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, 2, "--bedrock-max-jobs", "1") as pool:
        env = pool.env(TIERLINE_BATCH_MAX_ITEMS="10")
        worker = pool.start(env)
        settings = Settings.from_env(env)
        items = [i for i in bedrock_items(40, "br-quota") if "invocation" not in i]  # 30: three jobs
        publish_items(settings, items)
        ids = {i["custom_id"] for i in items}
        progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=180))
        assert set(progress.results) == ids and not progress.failures
        waits = log_events(worker, "batch_waiting_for_room")
        assert waits and all("ServiceQuotaExceededException" in w["error"] for w in waits)
        assert len(log_events(worker, "batch_submitted")) == 3


@pytest.mark.parametrize("refusal", ["forbidden", "unauthorized"])
def test_iam_refusing_the_create_is_the_accounts_refusal_not_the_batchs(  # type: ignore[no-untyped-def]
        settings, emulator_port, tmp_path, refusal: str) -> None:
    """AccessDeniedException / UnrecognizedClientException (403): the batch waits with an alert, nothing fails
    (read as a rejected batch, every item of every batch failed for good)."""
    batch = spool_batch(tmp_path, [i for i in bedrock_items(5, f"br-{refusal}") if "invocation" not in i],
                        f"tl-bedrock-{refusal}")

    async def create() -> str:
        provider = make_provider("bedrock", settings)
        try:
            return await provider.submit(batch)
        finally:
            await provider.close()

    account(emulator_port, "bedrock", refusal)
    try:
        with pytest.raises(AccountRefused, match="HTTP 403"):
            asyncio.run(create())
    finally:
        account(emulator_port, "bedrock", None)
    assert ":model-invocation-job/" in asyncio.run(create())  # fixed: created


def test_a_job_bedrock_does_not_know_is_not_found_not_rejected(settings) -> None:  # type: ignore[no-untyped-def]
    """ResourceNotFoundException: the poller's grace, then the items retried (it was polled for the whole
    TIERLINE_BEDROCK_TIMEOUT_HOURS)."""
    async def status() -> None:
        provider = make_provider("bedrock", settings)
        try:
            await provider.status("arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/deleted1234")
        finally:
            await provider.close()

    with pytest.raises(BatchNotFound, match="ResourceNotFoundException"):
        asyncio.run(status())
