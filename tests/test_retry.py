from core.outcomes import ItemContext, fail, settle
from core.retry import PollBackoff, RetryPolicy, is_retryable
from providers.base import ItemOutcome
from schemas import ErrorInfo

POLICY = RetryPolicy(max_attempts=3, base_delay_s=10, max_delay_s=25)


def test_retryable_errors_are_those_that_say_nothing_about_the_request() -> None:
    for kind in ("expired", "canceled", "batch_expired", "batch_cancelled", "rate_limit_error",
                 "overloaded_error", "api_error", "server_error"):
        assert is_retryable(kind), kind
    assert not is_retryable("invalid_request_error")
    assert is_retryable("whatever", 503) and is_retryable("whatever", 429)
    assert not is_retryable("whatever", 400)


def test_backoff_doubles_and_is_capped() -> None:
    assert [POLICY.delay(n) for n in (1, 2, 3)] == [10, 20, 25]


def test_retry_until_attempts_run_out_then_final() -> None:
    assert POLICY.decide(1, True, now=100).not_before == 110
    assert POLICY.decide(2, True, now=100).not_before == 120
    assert POLICY.decide(3, True, now=100).final
    assert POLICY.decide(1, False, now=100).final


def test_outcome_becomes_result_or_failure_with_metadata() -> None:
    ctx = ItemContext("x", 1, 2, {"tenant": "t1"})
    ok = settle(ItemOutcome("x", {"id": "msg"}, {"input_tokens": 3}, None), ctx, "anthropic", "b1", POLICY, 0)
    assert ok.result is not None and ok.result.metadata == {"tenant": "t1"} and ok.result.attempt == 1
    err = ErrorInfo(type="overloaded_error", message="busy")
    retried = settle(ItemOutcome("x", None, None, err, True), ctx, "anthropic", "b1", POLICY, 0)
    assert retried.failure is not None and not retried.failure.final and retried.retry_at == 10
    last = fail(ItemContext("x", 3, 2, {}), "anthropic", "b1", err, True, POLICY, 0)
    assert last.failure is not None and last.failure.final and last.retry_at is None


def test_poll_interval_backs_off_while_status_is_unchanged() -> None:
    backoff = PollBackoff(initial_s=1, maximum_s=4, factor=2)
    assert [backoff.next_interval("in_progress") for _ in range(4)] == [1, 2, 4, 4]
    assert backoff.next_interval("finalizing") == 1


def test_poll_intervals_are_spread_by_the_jitter_either_way() -> None:
    draws = iter([0.0, 1.0, 0.5])
    backoff = PollBackoff(initial_s=10, maximum_s=100, factor=2, jitter=0.2, rand=lambda: next(draws))
    assert [backoff.next_interval("in_progress") for _ in range(3)] == [8, 24, 40]
