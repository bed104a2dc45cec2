from core.limits import BatchGroup, Caps
from core.window import BatchWindow

ANTHROPIC = BatchGroup("anthropic")
GPT = BatchGroup("openai", "/v1/chat/completions", "gpt-4o-mini")
GPT41 = BatchGroup("openai", "/v1/chat/completions", "gpt-4.1-mini")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def window(clock: Clock, max_items: int = 0, max_bytes: int = 0, max_wait: float = 60.0) -> BatchWindow:
    keys = iter(range(1_000_000))
    return BatchWindow(lambda p: Caps.for_provider(p, max_items, max_bytes), max_wait, clock,
                       lambda g: f"{g.provider}-{next(keys)}")


def test_batch_closes_at_configured_item_cap() -> None:
    w = window(Clock(), max_items=3)
    closed = [b for i in range(7) for b in w.add(ANTHROPIC, f"id{i}", 10).closed]
    assert [b.count for b in closed] == [3, 3]
    assert all(b.close_reason == "max_items" for b in closed)
    assert [b.count for b in w.open_batches()] == [1]


def test_provider_cap_applies_when_setting_is_higher() -> None:
    assert Caps.for_provider("openai", max_items=10**9).max_items == 50_000
    assert Caps.for_provider("anthropic").max_items == 100_000
    assert Caps.for_provider("openai").max_bytes == 200 * 1024 * 1024


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
