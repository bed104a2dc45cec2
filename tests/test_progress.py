"""Where published items have got to (submit --follow): ends, rate and ETA on an injected clock."""

from __future__ import annotations

from core.progress import ItemProgress
from tests.clock import Clock


def result(cid: str, attempt: int = 1) -> dict:
    return {"custom_id": cid, "batch_id": "b1", "attempt": attempt, "usage": {"input_tokens": 10, "output_tokens": 4},
            "cost_usd": 0.5, "realtime_usd": 1.0}


def test_an_item_retried_then_succeeded_ends_well_and_counts_once() -> None:
    p = ItemProgress({"a", "b"}, Clock())
    p.batch_items("k1", ["a", "b", "someone-else"])
    p.batch_submitted("k1")
    assert p.batched == p.submitted == {"a", "b"}
    p.failure({"custom_id": "a", "final": False})
    p.result(result("b"))
    assert not p.done
    p.result(result("a", attempt=2))
    p.result(result("a", attempt=2))  # delivered twice
    assert p.done and p.ok
    assert p.retried == {"a"} and p.after_retry == 1
    assert p.tokens == {"input": 20, "output": 8} and p.cost_usd == 1.0 and p.realtime_usd == 2.0


def test_a_batch_submitted_before_its_items_are_read_still_counts_them_submitted() -> None:
    p = ItemProgress({"a", "b", "c"}, Clock())
    p.batch_submitted("k1")  # the batches topic was read first
    p.batch_items("k1", ["a", "b"])
    p.result(result("c"))  # a result says batched and submitted, whatever came first
    assert p.submitted == p.batched == {"a", "b", "c"}


def test_a_final_failure_or_dead_letter_ends_an_item_but_not_well() -> None:
    p = ItemProgress({"a", "b", "c"}, Clock())
    p.failure({"custom_id": "a", "final": True})
    p.dead_letter("b", "missing_model")
    p.dead_letter(None, "invalid_json")  # someone else's line: not counted
    assert not p.done
    p.skip(["c"])
    assert p.done and not p.ok
    assert p.dead_reasons == {"missing_model": 1}


def test_lines_published_without_a_custom_id_end_as_the_dead_letters_no_item_of_ours_claims() -> None:
    p = ItemProgress({"a", "b"}, Clock(), unkeyed=2)  # 4 lines: two of them not JSON, or with no custom_id
    p.result(result("a"))
    p.dead_letter("b", "missing_model")
    p.dead_letter(None, "invalid_json")
    assert (p.ended, p.total, p.done) == (3, 4, False) and "3/4 ended" in p.line()
    p.dead_letter("someone-else", "not_an_object")
    p.dead_letter(None, "invalid_json")  # more than were published: another producer's
    assert (p.ended, p.total, p.done, p.ok) == (4, 4, True, False)
    assert p.dead_lettered == 3 and "dead-lettered 3" in p.line()
    assert p.dead_reasons == {"missing_model": 1, "invalid_json": 1, "not_an_object": 1}


def test_rate_and_eta_come_from_items_ended_lately() -> None:
    clock = Clock()
    p = ItemProgress({f"i{n}" for n in range(100)}, clock)
    assert p.rate() is None and p.eta_s(None) is None  # nothing to go by yet
    clock.now += 10
    for n in range(20):
        p.result(result(f"i{n}"))
    rate = p.rate()
    assert rate == 2.0 and p.eta_s(rate) == 40.0
    line = p.line(bar_width=10)
    assert line.startswith("[##........] 20/100 ended") and "2/s" in line and "ETA 40s" in line
    clock.now += 20  # the rest wait in a provider batch: no rate foretells when it ends
    assert p.eta_s(p.rate()) is None and "ETA" not in p.line()


def test_a_batch_held_for_its_queue_is_said_once_held_once_submitted_and_once_completed() -> None:
    clock = Clock()
    p = ItemProgress({"a", "b"}, clock)
    p.batch_items("k1", ["a", "b"])
    p.batch_held("k1")
    p.batch_held("k1")  # the submitter says it again while it waits
    [held] = p.take_notes()
    assert held.startswith("batch k1 held") and "TIERLINE_ENQUEUED_TOKEN_LIMITS" in held
    assert "batches held 1" in p.line()
    clock.now += 42
    p.batch_submitted("k1")
    assert p.take_notes() == ["batch k1 fits now: submitted after 42 s held"]
    assert "held" not in p.line()
    p.result(result("a"))
    assert p.take_notes() == []  # b has not ended yet
    p.failure({"custom_id": "b", "final": True})
    assert p.take_notes() == ["batch k1 completed: 1 of its 2 items succeeded"]
    assert p.take_notes() == []


def test_a_batch_never_held_says_nothing() -> None:
    p = ItemProgress({"a"}, Clock())
    p.batch_items("k1", ["a"])
    p.batch_submitted("k1")
    p.result(result("a"))
    assert p.take_notes() == []
    p.batch_held("k1")  # a held status read after its submission: stale, not news
    assert p.take_notes() == [] and not p.held


def test_a_result_off_the_batch_tier_counts_as_succeeded_not_as_batched() -> None:
    progress = ItemProgress({"a", "b"}, Clock())
    progress.result({"custom_id": "a", "tier": "flex", "attempt": 1, "usage": None, "cost_usd": 0.1})
    progress.result({"custom_id": "b", "tier": "batch", "batch_id": "batch_1", "attempt": 1, "usage": None})
    assert progress.succeeded == {"a", "b"} and progress.batched == progress.submitted == {"b"}
