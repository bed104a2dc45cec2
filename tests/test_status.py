"""The rows of tierline status, from batch records, provider progress and alerts, at a given time."""

from core.status import batch_rows, counts_done, duration
from streams.settings import Settings

CATALOGUE = Settings().catalogue

NOW = 1_800_000_000.0


def record(key: str, state: str, created_ago: float, provider: str = "openai", **fields) -> dict:
    return {"batch_key": key, "provider": provider, "model": "gpt-4o-mini", "batch_id": f"batch_{key}",
            "item_count": 100, "state": state, "created_at": NOW - created_ago, "at": NOW - fields.pop("at_ago", 0),
            **fields}


def test_either_providers_counts_say_how_many_items_are_done_and_failed() -> None:
    assert counts_done({"total": 100, "completed": 40, "failed": 2}) == (42, 2)
    assert counts_done({"processing": 50, "succeeded": 45, "errored": 3, "canceled": 0, "expired": 2}) == (50, 5)
    # Bedrock's manifest: processed is its succeeded and errored together, not more items (it showed 720 of 360)
    assert counts_done({"total": 360, "processed": 360, "succeeded": 355, "errored": 5}) == (360, 5)


def test_unfinished_batches_come_first_oldest_first_with_time_left_and_their_alert() -> None:
    records = [record("young", "submitted", 600), record("old", "submitted", 20 * 3600),
               record("done", "ended", 7200, at_ago=60, succeeded=99, failed=1, cost_usd=0.25)]
    progress = {"old": {"provider_status": "in_progress", "counts": {"total": 100, "completed": 10, "failed": 0},
                        "expires_at": NOW + 3600, "changed_at": NOW - 5400}}
    alerts = {"old": {"kind": "stalled"}, "done": {"kind": "stalled"}}
    old, young, done = batch_rows(records, progress, alerts, NOW, CATALOGUE, ended_within_s=3600)
    assert (old.batch_key, young.batch_key, done.batch_key) == ("old", "young", "done")
    assert (old.done, old.left_s, old.unchanged_s, old.alert) == (10, 3600, 5400, "stalled")
    # No provider status yet: the documented 24 h window from creation.
    assert young.left_s == 86_400 - 600 and young.provider_status is None and young.unchanged_s is None
    # An ended batch has no time left, no alert any more, and its own tally.
    assert (done.left_s, done.alert, done.done, done.failed, done.cost_usd) == (None, None, 100, 1, 0.25)


def test_batches_that_ended_long_ago_are_left_out_unless_all_are_asked_for() -> None:
    records = [record("gone", "ended", 90_000, at_ago=80_000), record("live", "intent", 5)]
    assert [r.batch_key for r in batch_rows(records, {}, {}, NOW, CATALOGUE, ended_within_s=3600)] == ["live"]
    assert len(batch_rows(records, {}, {}, NOW, CATALOGUE, ended_within_s=None)) == 2


def test_durations_read_at_a_glance() -> None:
    assert [duration(s) for s in (None, 45, 720, 3 * 3600 + 300, 2 * 86_400 + 4 * 3600, -120)] == \
        ["-", "45s", "12m", "3h05m", "2d04h", "-2m"]


def test_the_table_fits_120_columns_and_wide_shows_it_whole() -> None:
    from streams.cli.status import Status, render

    arn = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/k3x9p2m7q1zz"
    model = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
    records = [record("a", "submitted", 600, provider="bedrock", batch_id=arn, model=model),
               record("b", "submitted", 60)]
    progress = {"a": {"provider_status": "InProgress", "counts": {"total": 360, "processed": 100, "succeeded": 99,
                                                                  "errored": 1}, "changed_at": NOW - 60}}
    status = Status(batch_rows(records, progress, {"a": {"kind": "provider_refused"}}, NOW, CATALOGUE), 0.0, 0.0)
    narrow = render(status).splitlines()
    assert max(map(len, narrow)) <= 120
    assert "…2m7q1zz" in narrow[1].split()[0] or narrow[1].startswith("…")  # an id keeps its end
    assert " 100 " in narrow[1] and "InProgress" not in narrow[1]  # done as Bedrock counts it; status in --wide
    wide = render(status, wide=True).splitlines()
    assert arn in wide[1] and model in wide[1] and "InProgress" in wide[1]
