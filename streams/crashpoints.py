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

__all__ = ["crash_point", "CRASH_POINTS"]

CRASH_POINTS = ("after_intent", "after_create", "mid_emit")

log = structlog.get_logger(__name__)


def crash_point(name: str) -> None:
    if os.environ.get("TIERLINE_CRASH_AT") == name:
        log.warning("crash_point_reached", point=name)
        os.kill(os.getpid(), signal.SIGKILL)
