"""The Faust application: the worker's host, with its web server.

Read top to bottom, a work item's path is: ``tierline.requests`` →
``agents.window_items`` (validate, window, spool, write-ahead intent) →
``agents.submit_batches`` → ``agents.poll_batches`` →
``tierline.results`` / ``tierline.failures`` / ``tierline.retry``.
Batches pass between the agents through plain asyncio queues, not Faust
channels: Faust clears channel queues whenever its own consumer group
rebalances, and a batch handed over must never be dropped.
"""

from __future__ import annotations

from pathlib import Path

import faust
from faust.types.web import Web

from streams.settings import Settings
from streams.web import ImpatientWeb

__all__ = ["build_app"]


class _App(faust.App):
    """Faust's app whose web server lets go of clients too slow to send a request (``ImpatientWeb``)."""

    def __init__(self, *args: object, web_read_timeout_s: float, **options: object) -> None:
        self._web_read_timeout_s = web_read_timeout_s
        super().__init__(*args, **options)  # type: ignore[arg-type]

    def _new_web(self) -> Web:
        return ImpatientWeb(self, head_timeout_s=self._web_read_timeout_s)


def build_app(settings: Settings) -> faust.App:
    """The Faust application of one worker, from the one ``Settings`` every part of it uses."""
    return _App(
        # Faust names its own topics after its id (``ID-__assignor-__leader``): under the prefix too.
        settings.topic_prefix + settings.app_id,
        broker=settings.broker,
        broker_credentials=settings.kafka.faust_credentials(),
        broker_client_id="tierline-faust",
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_read_timeout_s=settings.web_read_timeout_s,
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
