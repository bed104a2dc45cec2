"""What an item's provider outcome becomes: a result, or a failure that is retried or final."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from core.answers import Judged, Reading, judge_answer
from core.retry import RetryPolicy
from core.routing import DEFAULT_ROUTE
from schemas import ErrorInfo, FailureEvent, ResultEvent, RunKey, run_key

__all__ = ["ItemOutcome", "ItemContext", "Placing", "AttemptKey", "Ending", "attempt_key", "Settled", "settle",
           "fail", "AnswerRules"]

_OK = Judged()


@dataclass(slots=True)  # not frozen: made per item, and a frozen __init__ takes 5 times as long
class ItemOutcome:
    """One item's line in a provider's results (each adapter reads its own): a response, or an error."""

    custom_id: str
    response: dict[str, Any] | None
    usage: dict[str, Any] | None
    error: ErrorInfo | None
    retryable: bool = False


#: Where an attempt was read from: the input (``requests@APP_ID`` or ``retry@APP_ID``: the topic, in the consumer
#: group that read it), partition, offset and the record's timestamp (a record written again at a reused offset,
#: after a broker lost its data, is not the same one).
#: A plain tuple: one is made for every item placed.
Placing = tuple[str, int, int, int]
#: A retried attempt of a run, ``("#attempt", custom_id, re-run name or "", attempt)``: once it has ended, a twin of its
#: retry record (fed back twice by a batch settled twice, or written again by parking) is not run again.
AttemptKey = tuple[str, str, str, int]
#: What marks an attempt as ended in the ledger: where it was read from, and which attempt of its run it was.
Ending = Placing | AttemptKey


def attempt_key(custom_id: str, reprocess: str | None, attempt: int) -> AttemptKey:
    return ("#attempt", custom_id, reprocess or "", attempt)


@dataclass(slots=True)  # not frozen: made per item, and a frozen __init__ takes 5 times as long
class ItemContext:
    """What tierline keeps of an item while it is at the provider."""

    custom_id: str
    attempt: int
    source_partition: int
    metadata: dict[str, Any]
    reprocess: str | None = None
    route: list[str] | None = None  # the router's reasons; None: the default route to batch
    deadline: float | None = None  # Unix seconds after which its result is of no use, if it said
    #: The record this attempt was read from (``Placing``): once the attempt has ended, reading it again is not
    #: running it again.
    placed_by: Placing | None = None
    answer_schema: dict[str, Any] | None = None  # what its answer must fit (``core.answers``), if anything

    @property
    def run_key(self) -> RunKey:
        return run_key(self.custom_id, self.reprocess)

    def endings(self) -> list[Ending]:
        """The ledger's marks of this attempt having ended: its record, and for a retry (read from the retry
        topic, where twins can be) the attempt itself."""
        marks: list[Ending] = [] if self.placed_by is None else [self.placed_by]
        if self.attempt > 1:
            marks.append(attempt_key(self.custom_id, self.reprocess, self.attempt))
        return marks

    def encode(self) -> dict[str, Any]:
        doc = {"custom_id": self.custom_id, "attempt": self.attempt,
               "source_partition": self.source_partition, "metadata": self.metadata}
        if self.reprocess:
            doc["reprocess"] = self.reprocess
        if self.route:
            doc["route"] = self.route
        if self.deadline is not None:
            doc["deadline"] = self.deadline
        if self.placed_by is not None:
            doc["placed_by"] = self.placed_by
        if self.answer_schema is not None:
            doc["answer_schema"] = self.answer_schema
        return doc

    @classmethod
    def decode(cls, doc: dict[str, Any]) -> ItemContext:
        placed = doc.get("placed_by")
        return cls(doc["custom_id"], doc["attempt"], doc["source_partition"], doc["metadata"],
                   doc.get("reprocess"), doc.get("route"), doc.get("deadline"),
                   tuple(placed) if placed else None, doc.get("answer_schema"))





@dataclass(slots=True)  # not frozen: made per item, and a frozen __init__ takes 5 times as long
class Settled:
    """Exactly one of ``result`` and ``failure``; ``retry_at`` when the failure is retried."""

    result: ResultEvent | None = None
    failure: FailureEvent | None = None
    retry_at: float | None = None
    #: The response and usage of an answer refused (``core.answers``): billed all the same.
    billed: tuple[dict[str, Any], dict[str, Any] | None] | None = None


@dataclass(frozen=True, slots=True)
class AnswerRules:
    """How a provider's answers are judged (``core.answers.judge``): its wire's reading of a response, and
    whether an answer cut off at the token limit fails without a schema (``TIERLINE_TRUNCATED_FAILS``)."""

    reading: Callable[[dict[str, Any]], Reading | None]
    truncated_fails: bool


def fail(ctx: ItemContext, provider: str, batch_id: str | None, error: ErrorInfo,
         retryable: bool, policy: RetryPolicy, now: float) -> Settled:
    """A failed attempt: retried with backoff while attempts remain, else final."""
    decision = policy.decide(ctx.attempt, retryable, now)
    event = FailureEvent(custom_id=ctx.custom_id, provider=provider, batch_id=batch_id, error=error,
                         retryable=retryable, attempt=ctx.attempt, final=decision.final, metadata=ctx.metadata,
                         reprocess=ctx.reprocess, route=ctx.route or DEFAULT_ROUTE.reasons)
    return Settled(failure=event, retry_at=decision.not_before)


def settle(outcome: ItemOutcome, ctx: ItemContext, provider: str, batch_id: str,
           policy: RetryPolicy, now: float, answers: AnswerRules | None = None) -> Settled:
    """An item's outcome as its result, or its failure: a provider's error, or an answer ``answers`` refuses
    (which the provider billed: the failure carries the response, for its cost)."""
    if outcome.error is None:
        response = outcome.response or {}
        judged = _OK if answers is None else judge_answer(answers.reading, response, ctx.answer_schema,
                                                          answers.truncated_fails)
        if judged.error is not None:
            settled = fail(ctx, provider, batch_id, judged.error, True, policy, now)
            settled.billed = (response, outcome.usage)
            return settled
        result = ResultEvent(custom_id=ctx.custom_id, provider=provider, batch_id=batch_id,
                             response=response, usage=outcome.usage, attempt=ctx.attempt,
                             metadata=ctx.metadata, reprocess=ctx.reprocess, route=ctx.route or DEFAULT_ROUTE.reasons,
                             answer=judged.answer)
        return Settled(result=result)
    return fail(ctx, provider, batch_id, outcome.error, outcome.retryable, policy, now)
