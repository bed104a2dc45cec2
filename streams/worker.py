"""``tierline worker``: create the topics, wire the agents and run the Faust worker."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import threading
from typing import Any, NoReturn

import faust
import structlog

from streams.gc_tuning import tune_gc
from streams.logs import configure_logging
from streams.settings import PROVIDER_ENV, Settings
from streams.kafka.diagnose import explain
from streams.kafka.topics import TopicsMismatch, ensure_topics

__all__ = ["run_worker"]


def _refuse_to_start(event: str, reason: str) -> NoReturn:
    structlog.get_logger(__name__).error(event, reason=reason)
    print(f"tierline worker: {reason}", file=sys.stderr)
    sys.exit(1)


class _Worker(faust.Worker):
    """Faust's worker, which exits all the same once ``TIERLINE_SHUTDOWN_S`` have passed since a signal asked
    it to stop: cut off from Kafka, the last commit and leaving the group would wait for as long as the cut.
    Nothing is lost by it: what was not committed is read again by the partitions' next owner."""

    def __init__(self, *args: Any, shutdown_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shutdown_s = shutdown_s

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if not self._signal_stop_time:
            deadline = threading.Timer(self._shutdown_s, _exit_now, args=(self._shutdown_s,))
            deadline.daemon = True
            deadline.start()
        super()._schedule_shutdown(signal)


def _exit_now(after_s: float) -> None:
    structlog.get_logger(__name__).warning("shutdown_timed_out", after_s=after_s,
                                           doing="exiting; what was not committed is read again by the next owner")
    os._exit(0)


def run_worker(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    structlog.get_logger(__name__).info(
        "worker_starting", settings=dataclasses.asdict(settings),
        environment={name: os.environ[name] for name in PROVIDER_ENV if os.environ.get(name)})
    try:
        asyncio.run(ensure_topics(settings))
    except TopicsMismatch as exc:
        _refuse_to_start("topics_mismatch", str(exc))
    except Exception as exc:  # noqa: BLE001 - no Kafka, no worker: say why and which setting to look at
        _refuse_to_start("kafka_unreachable",
                         f"cannot reach Kafka at {settings.broker}: {asyncio.run(explain(settings.kafka, exc))}")

    from agents.async_queue import AsyncQueue
    from agents.poll_batches import PollBatches
    from agents.submit_batches import SubmitBatches
    from agents.window_items import WindowItems
    from agents.serve_realtime import RealtimeTier
    from agents.take_webhooks import TakeWebhooks
    from streams.app import build_app
    from streams.metrics import WorkerState
    from streams.runtime import Runtime
    from streams.state.batch_log import BatchJob
    from streams.web import add_pages

    # The composition root: every part gets the same settings, and what one part must hear of
    # another is wired here, as callbacks, rather than reached for through the runtime.
    app, runtime = build_app(settings), Runtime(settings)
    poller = PollBatches(runtime, resubmit=lambda job: submitter.put(job), announced=lambda: set(webhooks.secrets))
    webhooks = TakeWebhooks(runtime, wake=poller.wake)
    submitter = SubmitBatches(runtime, poll=poller.put)

    def hand_over(job: BatchJob) -> None:
        """A batch at ``intent`` is created by the submitter; one already submitted is polled."""
        (poller if job.record.batch_id else submitter).put(job)

    window, queue, realtime = WindowItems(runtime, hand_over=hand_over), AsyncQueue(runtime), RealtimeTier(runtime)
    runtime.settled_listeners.append(window.items_left_batch)
    add_pages(app, WorkerState(runtime, window, queue, poller), {**realtime.routes(), **webhooks.routes()})
    app.add_dependency(runtime)
    app.add_dependency(webhooks)
    app.add_dependency(realtime)
    app.add_dependency(queue)
    app.add_dependency(submitter)
    app.add_dependency(window)
    tune_gc()
    # Logging is ours (streams.logs): Faust's own set-up would give its records another format, unredacted.
    worker = _Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False, override_logging=False,
                     shutdown_s=settings.shutdown_s)
    # Faust's progress spinner sets the root logger to DEBUG so that every record spins it:
    # aiokafka then builds a debug record per message sent, a third of the emit path's time.
    worker.spinner = None
    worker.execute_from_commandline()
