from core.deadlines import DAY, FORECAST_MARGIN, StallWatch, forecast_end, past_expiry, results_at_risk
from streams.settings import Settings
from tests.clock import Clock

#: Each provider's windows, as its spec gives them with the default settings.
WINDOWS = {name: spec.windows for name, spec in Settings().catalogue.items()}


def test_a_stall_alert_comes_once_per_period_while_nothing_changes() -> None:
    clock = Clock()
    watch = StallWatch(stall_after_s=600, clock=clock)
    assert watch.observe(("in_progress", 0)) is None
    clock.now += 599
    assert watch.observe(("in_progress", 0)) is None
    clock.now += 1
    assert watch.observe(("in_progress", 0)) == 600
    clock.now += 300
    assert watch.observe(("in_progress", 0)) is None  # already said
    clock.now += 300
    assert watch.observe(("in_progress", 0)) == 1200  # and said again a period later


def test_any_change_restarts_the_stall_clock() -> None:
    clock = Clock()
    watch = StallWatch(stall_after_s=600, clock=clock)
    watch.observe(("in_progress", 0))
    clock.now += 500
    assert watch.observe(("in_progress", 10)) is None
    clock.now += 500
    assert watch.observe(("in_progress", 10)) is None
    clock.now += 100
    assert watch.observe(("in_progress", 10)) == 600


def test_a_batch_is_past_expiry_a_grace_period_after_its_24_hours() -> None:
    assert not past_expiry(WINDOWS["openai"], created_at=0, now=DAY + 3_599)
    assert past_expiry(WINDOWS["openai"], created_at=0, now=DAY + 3_600)
    assert past_expiry(WINDOWS["anthropic"], created_at=0, now=DAY + 10, grace_s=0)
    assert past_expiry(WINDOWS["anthropic"], created_at=0, now=100, grace_s=10, expires_at=90)  # the provider's word


def test_results_at_risk_only_close_to_the_providers_retention() -> None:
    warn = 3 * DAY
    assert results_at_risk(WINDOWS["anthropic"], created_at=0, now=20 * DAY, warn_before_s=warn) is None
    assert results_at_risk(WINDOWS["anthropic"], created_at=0, now=27 * DAY, warn_before_s=warn) == 2 * DAY
    # OpenAI keeps a batch's output as long as tierline asks (TIERLINE_OPENAI_OUTPUT_EXPIRES_S, 7 days by default).
    assert results_at_risk(WINDOWS["openai"], created_at=0, now=6 * DAY, warn_before_s=warn) == DAY
    month = Settings(openai_output_expires_s=int(30 * DAY)).catalogue["openai"].windows
    assert results_at_risk(month, created_at=0, now=27 * DAY, warn_before_s=warn) is None


def test_a_batch_answered_404_is_gone_only_past_the_grace_after_its_create() -> None:
    from core.deadlines import gone

    assert not gone(created_at=1_000.0, now=1_599.0, grace_s=600.0)
    assert gone(created_at=1_000.0, now=1_600.0, grace_s=600.0)


def test_a_batch_straggles_once_only_the_async_sla_is_left_before_its_earliest_deadline() -> None:
    from core.deadlines import straggling

    assert not straggling(None, now=10**10, async_sla_s=300)
    assert not straggling(1_000.0, now=699.0, async_sla_s=300)
    assert straggling(1_000.0, now=700.0, async_sla_s=300)


def test_a_short_retention_is_not_at_risk_from_the_start() -> None:
    # Gemini keeps a job's results two days, less than the default warning of three: warned with 12 h left.
    assert results_at_risk(WINDOWS["gemini"], created_at=0, now=60, warn_before_s=3 * DAY) is None
    assert results_at_risk(WINDOWS["gemini"], created_at=0, now=1.5 * DAY + 1, warn_before_s=3 * DAY) == 0.5 * DAY - 1


def test_a_running_batch_is_foretold_to_end_when_its_pace_says_a_little_late() -> None:
    # Created at 1,000; a quarter done 60 s later: all of it 240 s after its create, read 2 % late.
    assert forecast_end(1_000.0, 1_060.0, (250, 1_000)) == 1_000.0 + 240.0 * (1 + FORECAST_MARGIN)
    # The later reading, of the same pace, foretells the same end.
    assert forecast_end(1_000.0, 1_120.0, (500, 1_000)) == forecast_end(1_000.0, 1_060.0, (250, 1_000))


def test_nothing_is_foretold_before_the_first_request_is_done_once_all_are_or_without_counts() -> None:
    assert forecast_end(1_000.0, 1_060.0, (0, 1_000)) is None  # a queue's wait says nothing of the pace
    assert forecast_end(1_000.0, 1_060.0, (1_000, 1_000)) is None  # finalizing: no count foretells its end
    assert forecast_end(1_000.0, 1_060.0, None) is None  # Anthropic's counts, say
    assert forecast_end(1_000.0, 990.0, (10, 1_000)) is None  # read before its create: clocks differ
