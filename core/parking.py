"""Which waiting retries to write again at the end of their partition (to *park*).

A retry read before its ``not_before`` waits in the worker's memory, and its offset holds its partition's
commit back meanwhile: a restart or a takeover reads it again, and with it everything published behind it.
A retry can wait up to ``TIERLINE_RETRY_MAX_DELAY_S`` (an hour by default), so one waiting retry would make
a restart read an hour of requests again. Parking writes the waiting retry again, byte for byte, at the end
of its partition, records the old record's attempt as ended (so that it is not run if read again) and lets
the commit pass it. The copy is read again soon after and waits on; each retry is written again at most
once per parking round, and only when that frees a record that is not itself waiting.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["to_park"]


def to_park(waiting: Iterable[tuple[float, int]], consumed_to: int, now: float, min_wait_s: float) -> set[int]:
    """Of one partition's waiting retries, given as ``(not_before, offset)``, the offsets worth parking: those
    still to wait longer than ``min_wait_s`` (the others are placed soon enough), and none unless some record
    between the earliest of them and ``consumed_to`` (the partition's last offset read) is not itself waiting:
    parking retries that only hold back one another gains nothing."""
    waiting = list(waiting)
    long = {offset for not_before, offset in waiting if not_before > now + min_wait_s}
    if not long:
        return set()
    pin = min(long)
    held_from_pin = sum(1 for _, offset in waiting if offset >= pin)
    return long if consumed_to - pin + 1 > held_from_pin else set()
