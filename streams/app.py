"""The Faust application, its settings and the in-process channels between agents.

Read top to bottom, a work item's path is: ``tierline.requests`` →
``agents.window_items`` (validate, window, spool) → ``to_submit`` →
``agents.submit_batches`` → ``to_poll`` → ``agents.poll_batches`` →
``tierline.results`` / ``tierline.failures`` / ``tierline.retry``.
"""

from __future__ import annotations

from pathlib import Path

import faust

from streams.runtime import Runtime
from streams.settings import Settings

__all__ = ["app", "settings", "runtime", "to_submit", "to_poll"]

settings = Settings.from_env()

app = faust.App(
    settings.app_id,
    broker=settings.broker,
    web_port=settings.web_port,
    broker_rebalance_timeout=settings.rebalance_timeout_s,
    # Tansu holds a first group join for about half the session timeout: Faust's
    # default of 60 s meant a 30 s wait before the agents started.
    broker_session_timeout=settings.session_timeout_s,
    topic_partitions=settings.partitions,
    datadir=str(Path(settings.data_dir) / "faust"),
    # Tansu has no transactions; real Kafka has, but the design is at-least-once
    # with idempotent handling on both.
    processing_guarantee="at_least_once",
)

runtime = Runtime(settings)

#: Closed, spooled batches waiting to be created at their provider.
to_submit = app.channel()
#: Batches the provider accepted, to be followed until they end.
to_poll = app.channel()
