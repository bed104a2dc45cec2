"""Named places where a test can have the worker killed, for real, with SIGKILL.

``TIERLINE_CRASH_AT=after_create`` makes the worker kill itself the first time
it reaches ``crash_point("after_create")``: no cleanup, no flush, exactly as
``kill -9`` at that instant. Unset (always, in production), a crash point is a
dictionary lookup. The kill tests use it for the instants a test cannot hit
from outside: between the provider accepting a batch and tierline recording
its id, and between two chunks of a batch's results.
"""

from __future__ import annotations

import os
import signal

import structlog

__all__ = ["crash_point", "crash_on_message", "CRASH_MARKER", "CRASH_POINTS", "SimulatedCrash"]

CRASH_POINTS = ("after_intent", "after_create", "mid_emit")

log = structlog.get_logger(__name__)

#: ``TIERLINE_CRASH_ON=MARKER``: a message whose bytes hold MARKER crashes the agent reading it,
#: past its per-item error boundary, as a bug not yet found would (read once, at import).
CRASH_MARKER = os.environ.get("TIERLINE_CRASH_ON", "").encode()


class SimulatedCrash(BaseException):
    """What ``crash_on_message`` raises: a BaseException, so no ``except Exception`` catches it."""


def crash_on_message(value: bytes | None) -> None:
    if CRASH_MARKER and value and CRASH_MARKER in value:
        raise SimulatedCrash(f"TIERLINE_CRASH_ON marker {CRASH_MARKER.decode()!r} in a message")


def crash_point(name: str) -> None:
    if os.environ.get("TIERLINE_CRASH_AT") == name:
        log.warning("crash_point_reached", point=name)
        os.kill(os.getpid(), signal.SIGKILL)
