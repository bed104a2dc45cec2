from core.limits import BatchGroup, Caps
from core.window import BatchWindow
from streams.settings import Settings
from tests.clock import Clock

ANTHROPIC = BatchGroup("anthropic")
GPT = BatchGroup("openai", "/v1/chat/completions", "gpt-4o-mini")
GPT41 = BatchGroup("openai", "/v1/chat/completions", "gpt-4.1-mini")


def window(clock: Clock, max_items: int = 0, max_bytes: int = 0, max_wait: float = 60.0) -> BatchWindow:
    keys = iter(range(1_000_000))
    return BatchWindow(Settings(batch_max_items=max_items, batch_max_bytes=max_bytes).caps, max_wait, clock,
                       lambda g: f"{g.provider}-{next(keys)}")


def test_batch_closes_at_configured_item_cap() -> None:
    w = window(Clock(), max_items=3)
    closed = [b for i in range(7) for b in w.add(ANTHROPIC, f"id{i}", 10).closed]
    assert [b.count for b in closed] == [3, 3]
    assert all(b.close_reason == "max_items" for b in closed)
    assert [b.count for b in w.open_batches()] == [1]


def test_provider_cap_applies_when_setting_is_higher() -> None:
    assert Settings(batch_max_items=10**9).caps("openai").max_items == 50_000
    assert Settings().caps("anthropic").max_items == 100_000
    assert Settings().caps("openai").max_bytes == 200 * 1024 * 1024


def test_byte_cap_closes_before_overflowing() -> None:
    w = window(Clock(), max_bytes=100)
    assert w.add(ANTHROPIC, "a", 60).closed == []
    placement = w.add(ANTHROPIC, "b", 60)
    assert [b.ids for b in placement.closed] == [{"a"}]
    assert placement.closed[0].close_reason == "max_bytes"
    assert w.open_batches()[0].ids == {"b"}


def test_same_custom_id_in_one_batch_is_collapsed() -> None:
    w = window(Clock())
    assert w.add(ANTHROPIC, "a", 10).batch_key is not None
    assert w.add(ANTHROPIC, "a", 10).batch_key is None
    assert w.open_batches()[0].count == 1


def test_openai_groups_by_model_anthropic_mixes() -> None:
    w = window(Clock())
    w.add(GPT, "a", 10)
    w.add(GPT41, "b", 10)
    w.add(ANTHROPIC, "c", 10)
    assert sorted(b.group.label() for b in w.open_batches()) == [
        "anthropic", "openai//v1/chat/completions/gpt-4.1-mini", "openai//v1/chat/completions/gpt-4o-mini"]


def test_max_wait_counts_from_first_item() -> None:
    clock = Clock()
    w = window(clock, max_wait=30)
    w.add(ANTHROPIC, "a", 10)
    clock.now += 20
    w.add(ANTHROPIC, "b", 10)
    assert w.next_deadline() == 1030.0
    clock.now += 9.9
    assert w.due() == []
    clock.now += 0.1
    [batch] = w.due()
    assert batch.ids == {"a", "b"} and batch.close_reason == "max_wait"
    assert w.next_deadline() is None


BEDROCK = BatchGroup("bedrock", "InvokeModel", "anthropic.claude-3-5-haiku-20241022-v1:0")


def bedrock_window(clock: Clock, least: int, max_wait: float = 60.0, underfilled_wait: float = 600.0) -> BatchWindow:
    keys = iter(range(1_000_000))
    return BatchWindow(lambda p: Caps(50_000, 1 << 30, least), max_wait, clock,
                       lambda g: f"{g.provider}-{next(keys)}", underfilled_wait)


def test_a_batch_below_the_providers_minimum_stays_open_past_its_wait_and_is_padded() -> None:
    clock = Clock()
    w = bedrock_window(clock, least=5)
    for i in range(3):
        w.add(BEDROCK, f"id{i}", 10)
    clock.now += 61
    assert w.due() == []
    assert w.next_deadline() == 1000.0 + 60 + 600
    for i in range(3, 5):
        w.add(BEDROCK, f"id{i}", 10)
    [closed] = w.due()  # padded to the minimum: due at once, its wait being over
    assert closed.count == 5 and closed.close_reason == "max_wait"


def test_a_batch_that_never_reaches_the_minimum_closes_as_below_minimum() -> None:
    clock = Clock()
    w = bedrock_window(clock, least=5)
    w.add(BEDROCK, "lonely", 10)
    clock.now += 60 + 599
    assert w.due() == []
    clock.now += 1
    [closed] = w.due()
    assert closed.close_reason == "below_minimum" and closed.count == 1


def test_bedrock_caps_are_quotas_that_settings_may_raise() -> None:
    default = Settings().caps("bedrock")
    assert (default.max_items, default.max_bytes, default.min_items) == (50_000, 1024 * 1024 * 1024, 100)
    raised = Settings(bedrock_max_records=200_000, bedrock_min_records=1000).caps("bedrock")
    assert (raised.max_items, raised.min_items) == (200_000, 1000)
    assert Settings(batch_max_items=500, bedrock_max_records=200_000).caps("bedrock").max_items == 500
    # The others' limits are hard: a quota setting does not move them.
    assert Settings(bedrock_max_records=200_000, bedrock_min_records=100).caps("openai") == Settings().caps("openai")
