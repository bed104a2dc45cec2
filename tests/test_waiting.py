"""Retries waiting out their not_before: due soonest first, in the order read when due together."""

from __future__ import annotations

from types import SimpleNamespace

from core.waiting import WaitingRetries


def retry(custom_id: str, not_before: float) -> SimpleNamespace:
    return SimpleNamespace(custom_id=custom_id, not_before=not_before)


def test_retries_come_out_when_due_soonest_first_and_in_the_order_read_when_due_together() -> None:
    waiting = WaitingRetries()
    for offset, (custom_id, due) in enumerate([("late", 30.0), ("a", 10.0), ("b", 10.0), ("soon", 5.0)]):
        waiting.add(retry(custom_id, due), None, ("retry", offset % 2), offset, 0)  # type: ignore[arg-type]
    assert waiting.next_due == 5.0 and len(waiting) == 4
    assert [w.retry.custom_id for w in waiting.due(10.0)] == ["soon", "a", "b"]
    assert waiting.next_due == 30.0 and [w.retry.custom_id for w in waiting.due(29.9)] == []


def test_removed_retries_are_gone_and_the_rest_still_come_out_in_order() -> None:
    waiting = WaitingRetries()
    for offset, due in enumerate([3.0, 1.0, 2.0, 4.0]):
        waiting.add(retry(f"r{offset}", due), None, ("retry", 0), offset, 0)  # type: ignore[arg-type]
    by_source = waiting.by_source()
    assert list(by_source) == [("retry", 0)] and len(by_source["retry", 0]) == 4
    waiting.remove(w for w in by_source["retry", 0] if w.offset in (1, 3))
    assert [w.offset for w in waiting.due(10.0)] == [2, 0]
