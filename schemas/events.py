"""The records that travel on tierline's public topics.

Every topic's key is the item's ``custom_id`` as UTF-8 bytes and every value is a
JSON object (orjson). These dataclasses are the one definition of each event's
fields; ``orjson.dumps`` serialises them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = [
    "run_key",
    "RunKey",
    "WorkItem",
    "RetryItem",
    "AsyncItem",
    "PendingCallback",
    "ResultEvent",
    "FailureEvent",
    "DeadLetter",
    "ErrorInfo",
    "BatchRecord",
    "BatchProgress",
    "HELD_FOR_QUEUE",
    "Alert",
    "AlertKind",
    "BatchState",
    "ALERT_KINDS",
    "Tier",
    "TIERS",
    "AsyncTier",
    "ASYNC_TIERS",
    "AskedTier",
    "ASKED_TIERS",
]

Json = dict[str, Any]


@dataclass(slots=True, kw_only=True)
class WorkItem:
    """A unit of AI work as published on ``tierline.requests``.

    ``reprocess`` names a deliberate re-run (``tierline replay --reprocess``): an
    item that already succeeded is processed again once per name, its attempts
    counted from 1, and every event about it carries the name.

    The routing fields say which tier should run it (``core.routing``): a tier asked
    for, or what the router weighs for ``auto``.

    A Bedrock item names its ``model`` here (its ``params`` are the InvokeModel or
    Converse body, which has none) and its ``invocation``: ``invoke`` or ``converse``.

    ``answer_schema`` (JSON Schema) is what the answer must fit, when the request's own
    response format or forced tool does not say it (``core.answers``).
    """

    custom_id: str
    provider: str
    params: Json
    endpoint: str | None = None
    metadata: Json = field(default_factory=dict)
    reprocess: str | None = None
    tier: AskedTier = "auto"
    user_waiting: bool = False
    deadline: float | None = None
    max_latency_s: float | None = None
    priority: str | None = None
    bulk: bool = False
    callback_url: str | None = None
    model: str | None = None
    invocation: str | None = None
    answer_schema: Json | None = None

    @property
    def run_key(self) -> RunKey:
        """What idempotency is keyed on: the custom_id, within its re-run if any."""
        return run_key(self.custom_id, self.reprocess)


RunKey = str | tuple[str, str]


def run_key(custom_id: str, reprocess: str | None) -> RunKey:
    """The custom_id itself, or (custom_id, name) within a re-run: a pair never equals a string,
    so no custom_id, whatever characters it holds, can pass for another's re-run."""
    return (custom_id, reprocess) if reprocess else custom_id


@dataclass(slots=True, kw_only=True)
class RetryItem:
    """A failed item fed back on ``tierline.retry``, alone, for another attempt.

    ``not_before`` is a Unix time in seconds: the item must not be resubmitted
    earlier. ``source_partition`` is the ``tierline.requests`` partition the
    item first arrived on; every event about the item stays on that partition.
    """

    custom_id: str
    provider: str
    params: Json
    endpoint: str | None
    metadata: Json
    attempt: int
    not_before: float
    source_partition: int
    previous_error: ErrorInfo | None = None
    reprocess: str | None = None
    route: list[str] | None = None
    model: str | None = None  # Bedrock items: the model and invocation, as on the request
    invocation: str | None = None
    deadline: float | None = None  # as on the request
    answer_schema: Json | None = None  # as on the request


@dataclass(slots=True, kw_only=True)
class AsyncItem:
    """A work item routed to the realtime or async tier, on ``tierline.async`` (keyed by ``custom_id``).

    ``arrived_at`` is when its request was published (Unix seconds): the tier's SLA counts
    from it. ``route`` gives the router's reasons.
    """

    custom_id: str
    provider: str
    params: Json
    endpoint: str | None
    metadata: Json
    reprocess: str | None
    tier: AsyncTier
    route: list[str]
    arrived_at: float
    source_partition: int
    deadline: float | None = None
    callback_url: str | None = None
    model: str | None = None  # Bedrock items: the model and invocation, as on the request
    invocation: str | None = None
    answer_schema: Json | None = None  # as on the request

    @property
    def run_key(self) -> RunKey:
        return run_key(self.custom_id, self.reprocess)


@dataclass(slots=True, kw_only=True)
class PendingCallback:
    """A callback still to deliver, on ``tierline.callbacks`` (keyed by ``custom_id``): the result event to
    POST, where, as which Standard Webhooks message, and which attempt is next, not before when."""

    custom_id: str
    provider: str
    tier: AsyncTier
    metadata: Json
    reprocess: str | None
    route: list[str]
    source_partition: int
    url: str
    webhook_id: str
    body: Any  # the result event: a JSON object (written as the event's own bytes)
    attempt: int = 1
    not_before: float = 0.0


@dataclass(kw_only=True)  # not slotted: one encoded per item, and orjson encodes a slotted one 4x slower
class ErrorInfo:
    """What went wrong, in the provider's words where it gave any."""

    type: str
    message: str


@dataclass(kw_only=True)  # not slotted: one encoded per item, and orjson encodes a slotted one 4x slower
class ResultEvent:
    """One item that succeeded, on ``tierline.results``.

    ``cost_usd`` is what the item cost: the provider's reported usage at the price
    table's prices for ``tier`` (the batch discount applied on ``batch``);
    ``realtime_usd`` is what the same tokens cost at full price, so the saving is
    the difference. ``answer`` is the answer parsed, when it was checked against a
    JSON Schema (``core.answers``).
    """

    custom_id: str
    provider: str
    batch_id: str | None
    response: Json
    usage: Json | None
    attempt: int
    metadata: Json
    reprocess: str | None = None
    tier: Tier = "batch"
    model: str | None = None
    cost_usd: float = 0.0
    realtime_usd: float = 0.0
    route: list[str] | None = None
    answer: Any = None


@dataclass(kw_only=True)  # not slotted: one encoded per item, and orjson encodes a slotted one 4x slower
class FailureEvent:
    """One failed attempt, on ``tierline.failures``.

    ``final`` says that no further attempt will be made; otherwise the item is
    on its way back through ``tierline.retry``. An answer the provider billed but
    tierline refused (``core.answers``) says what it cost: ``cost_usd``, by ``model``.
    """

    custom_id: str
    provider: str
    batch_id: str | None
    error: ErrorInfo
    retryable: bool
    attempt: int
    final: bool
    metadata: Json
    reprocess: str | None = None
    tier: Tier = "batch"
    route: list[str] | None = None
    model: str | None = None
    cost_usd: float = 0.0


@dataclass(slots=True, kw_only=True)
class DeadLetter:
    """Input that can never be processed, on ``tierline.deadletter``.

    The original key and value are kept byte for byte (base64), with where they
    came from, so an operator can fix and republish them. A value too large to be
    kept whole in a letter is cut (``value_truncated``): the whole of it stays at
    its topic, partition and offset.
    """

    reason: str
    message: str
    topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str
    value_truncated: bool | None = None


#: A batch's life: ``intent`` (durable, not yet created), ``submitted`` (created at the provider), then one of
#: ``ended`` (settled), ``rejected`` (refused whole, or replaced by batches of its items) or ``superseded`` (an
#: intent a former owner wrote too late, or a resumed one whose items had succeeded elsewhere).
#: The tiers that run an item: batch and flex at batch prices, async and realtime at full price.
Tier = Literal["realtime", "async", "flex", "batch"]
TIERS: tuple[Tier, ...] = get_args(Tier)
#: The tiers the async-queue agent runs (``tierline.async``).
AsyncTier = Literal["realtime", "async", "flex"]
ASYNC_TIERS: tuple[AsyncTier, ...] = get_args(AsyncTier)
#: What a request may ask for: a tier, or ``auto`` (the router chooses).
AskedTier = Literal["auto", "realtime", "async", "flex", "batch"]
ASKED_TIERS: tuple[AskedTier, ...] = get_args(AskedTier)

#: A batch's record: ``intent`` (not yet created), ``submitted``, ``ended``; ``rejected`` (refused whole: its items
#: failed), ``replaced`` (its items went on in new batches: split to fit the queue, requeued, or refused items set
#: aside), ``superseded`` (a resumed intent whose items succeeded elsewhere meanwhile, or a late one of a former owner).
BatchState = Literal["intent", "submitted", "ended", "rejected", "replaced", "superseded"]


@dataclass(slots=True, kw_only=True)
class BatchRecord:
    """The life of one provider batch, on the internal ``tierline.batches`` topic.

    ``batch_key`` is tierline's own name for the batch, known before the
    provider is called; ``batch_id`` is the provider's, once it has answered.
    ``intent`` is written (with the batch's items, in ``chunks`` records on
    ``tierline.batch-items``) before the provider is asked to create it, so
    that whoever owns partition ``home`` after a crash can finish it.
    """

    batch_key: str
    provider: str
    state: BatchState
    item_count: int
    endpoint: str | None = None
    model: str | None = None
    batch_id: str | None = None
    provider_status: str | None = None
    at: float = 0.0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    home: int = 0
    chunks: int = 0
    created_at: float = 0.0  # when the intent was written: orphans are looked for after it
    cancel: str | None = None  # set by ``tierline cancel``: "retry" or "fail" its unfinished items
    estimated_usd: float = 0.0  # what the batch may cost at most, counted against the daily budget
    budget_day: int = 0  # the UTC day (days since the epoch) it was counted on
    cost_usd: float = 0.0  # what it did cost, from the provider's usage, once ended
    realtime_usd: float = 0.0  # what its results would have cost at the standard prices, once ended
    replaces: str | None = None  # the batch_key of a batch refused for some items, whose others this one holds
    requeues: int = 0  # how many times these items went back because the provider's queue was full
    estimated_tokens: int = 0  # its input tokens, estimated from its size: what it takes of the enqueued-token limit
    deadline: float | None = None  # the earliest of its items' deadlines, if any has one
    owner: str | None = None  # the mark of the worker's hold on ``home`` it was written under (``BatchLog.take``)
    #: Where its items were read: ``[topic, partition, last offset]`` each. The next owner of such a partition,
    #: which reads them again if the group's commit did not pass them, knows them in flight (``BatchLog.held_from``).
    sources: list[tuple[str, int, int]] | None = None


#: ``BatchProgress.provider_status`` of a batch the submitter holds until it fits its model's queue.
HELD_FOR_QUEUE = "held_for_queue"


@dataclass(slots=True, kw_only=True)
class BatchProgress:
    """What a provider last said of a batch, on the internal ``tierline.batch-status`` (keyed by ``batch_key``).

    Written by the poller whenever the status or counts change, for ``tierline status``; by the
    submitter, with ``provider_status`` ``held_for_queue`` and no ``batch_id`` yet, while a batch
    waits to fit its model's ``TIERLINE_ENQUEUED_TOKEN_LIMITS`` entry.
    """

    batch_key: str
    provider: str
    batch_id: str
    provider_status: str
    counts: Json
    expires_at: float | None
    changed_at: float


#: What an alert is about (described on ``Alert`` and in the alerts topic's schema): a closed set, so that a
#: misspelt kind is mypy's error, not an alert nobody's rule matches.
AlertKind = Literal["stalled", "expired", "results_at_risk", "provider_refused", "queue_full", "batch_not_found",
                    "unexpected_results", "billed_twice", "submit_failed", "poll_failed", "settle_failed",
                    "budget_spent"]
ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)


@dataclass(slots=True, kw_only=True)
class Alert:
    """Something an operator must look at, on ``tierline.alerts`` (keyed by ``batch_key``).

    ``kind``: one of ``ALERT_KINDS``, each described in ``schemas.json_schema.FIELD_DOCS`` (and so in the
    alerts topic's schema).
    """

    kind: str
    batch_key: str
    provider: str
    batch_id: str | None
    message: str
    at: float
    seconds: float | None = None  # how long unchanged, or how long before the results go
