"""tierline's topics: the one list of their short names, and their full names under a prefix.

Code names a topic by attribute (``settings.topics.requests``), never by a string
put together where it is used, so that a misspelt topic is a type error, not a
consumer waiting for ever on a topic nobody writes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TopicSpec", "TOPICS", "PUBLIC", "Topics"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    """A topic tierline owns: its short name, whether it is compacted, whether users read it, what it holds."""

    name: str
    compacted: bool = False
    public: bool = True
    #: One partition whatever TIERLINE_PARTITIONS says: its order is what every worker agrees on.
    single: bool = False
    #: How long records are kept, if not the broker's default.
    retention_ms: int | None = None
    doc: str


TOPICS = (
    TopicSpec(name="requests", doc="work items in, keyed by custom_id"),
    TopicSpec(name="retry", doc="failed items fed back one by one, with attempt and not_before"),
    TopicSpec(name="results", doc="one event per item that succeeded"),
    TopicSpec(name="failures", doc="one event per failed attempt"),
    TopicSpec(name="deadletter", doc="input that can never be processed, kept byte for byte"),
    TopicSpec(name="alerts", doc="what an operator must look at: stalled or expired batches, results at risk"),
    TopicSpec(name="async", public=False,
              doc="work items routed to the realtime or async tier, for the async-queue agent"),
    TopicSpec(name="ledger", compacted=True, public=False, doc="custom_ids that have succeeded (idempotency)"),
    TopicSpec(name="batches", compacted=True, public=False,
              doc="the life of every provider batch (write-ahead intent first)"),
    TopicSpec(name="batch-items", compacted=True, public=False,
              doc="the items of each unfinished batch, deleted once it settles"),
    TopicSpec(name="batch-status", compacted=True, public=False,
              doc="what the provider last said of each batch, for tierline status"),
    TopicSpec(name="crashes", compacted=True, public=False,
              doc="how often workers died at a message, so that it is set aside"),
    TopicSpec(name="callbacks", public=False,
              doc="async-tier callbacks still to deliver, each with its next attempt: a worker's death loses none"),
    TopicSpec(name="budget", public=False, single=True, retention_ms=3 * 86_400_000,  # today's is what counts
              doc="the daily budget's reserves and actual costs, in the one order every worker folds"),
    TopicSpec(name="webhooks", public=False, single=True, retention_ms=86_400_000,
              doc="providers' verified webhooks (a batch ended), for whichever worker follows the batch"),
)

#: The short names of the topics users publish to or subscribe to (``tierline tail`` takes them).
PUBLIC = tuple(spec.name for spec in TOPICS if spec.public)


def _attribute(short: str) -> str:
    """``batch-items`` is ``batch_items``; ``async`` (a keyword) is ``async_tier``."""
    return "async_tier" if short == "async" else short.replace("-", "_")


@dataclass(frozen=True, slots=True, kw_only=True)
class Topics:
    """The full name of every topic: the prefix (``TIERLINE_TOPIC_PREFIX``) and the short name."""

    requests: str
    retry: str
    results: str
    failures: str
    deadletter: str
    alerts: str
    async_tier: str
    ledger: str
    batches: str
    batch_items: str
    batch_status: str
    crashes: str
    callbacks: str
    budget: str
    webhooks: str

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        return cls(**{_attribute(spec.name): prefix + spec.name for spec in TOPICS})

    def named(self, short: str) -> str:
        """The full name of a topic given by its short name (a command's argument); KeyError if none."""
        if short not in _SHORT:
            raise KeyError(f"no tierline topic is named {short!r}; the topics are {', '.join(_SHORT)}")
        name: str = getattr(self, _attribute(short))
        return name


_SHORT = tuple(spec.name for spec in TOPICS)
