"""The rows of ``tierline status``: where each batch stands, how old it is, how long it has left; pure.

Inputs are the decoded records of the internal topics: each batch's latest record
(``tierline.batches``), what its provider last said (``tierline.batch-status``) and
its latest alert (``tierline.alerts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from core.spec import Catalogue

__all__ = ["BatchRow", "batch_rows", "counts_done", "Done", "duration"]

UNFINISHED = frozenset({"intent", "submitted"})
#: Counts that are no items finished: Anthropic's still running, OpenAI's and Bedrock's totals, and Bedrock's
#: processed (its succeeded and errored together).
_NOT_DONE = frozenset({"processing", "total", "processed"})
_FAILED = frozenset({"failed", "errored", "expired", "canceled"})


@dataclass(frozen=True, slots=True)
class BatchRow:
    batch_key: str
    provider: str
    model: str | None
    batch_id: str | None
    items: int
    state: str  # tierline's (schemas.BatchState): intent, submitted, ended, rejected, replaced, superseded
    provider_status: str | None
    done: int  # items the provider has finished, either way
    failed: int
    age_s: float
    left_s: float | None  # before the provider's completion window closes; None once ended
    unchanged_s: float | None  # since the provider's status or counts last changed
    alert: str | None  # the latest alert's kind, for a batch not yet ended
    cost_usd: float

    @property
    def unfinished(self) -> bool:
        return self.state in UNFINISHED

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class Done(NamedTuple):
    finished: int
    failed: int


def counts_done(counts: dict[str, int]) -> Done:
    """How many requests have finished, and failed, from any provider's request counts."""
    done = sum(v for k, v in counts.items() if k not in _NOT_DONE)
    return Done(done, sum(v for k, v in counts.items() if k in _FAILED))


def batch_rows(records: list[dict[str, Any]], progress: dict[str, dict[str, Any]], alerts: dict[str, dict[str, Any]],
               now: float, catalogue: Catalogue, ended_within_s: float | None = None) -> list[BatchRow]:
    """Unfinished batches oldest first, then those ended within ``ended_within_s`` (None: all). Time left is the
    provider's expiry, or its spec's window (none for a provider ``catalogue`` no longer knows)."""
    rows = []
    for record in records:
        unfinished = record["state"] in UNFINISHED
        if not unfinished and ended_within_s is not None and now - record["at"] > ended_within_s:
            continue
        key = record["batch_key"]
        seen = progress.get(key) or {}
        counts = seen.get("counts") or {}
        if not unfinished and not counts:
            counts = {"succeeded": record.get("succeeded", 0), "failed": record.get("failed", 0),
                      "retried": record.get("retried", 0)}
        done, failed = counts_done(counts)
        created = record.get("created_at") or record["at"]
        left = None
        if unfinished:
            spec = catalogue.get(record["provider"])
            expires = seen.get("expires_at") or (created + spec.windows.completion_s if spec else None)
            left = expires - now if expires else None
        alert = (alerts.get(key) or {}).get("kind") if unfinished else None
        rows.append(BatchRow(
            key, record["provider"], record.get("model"), record.get("batch_id"), record["item_count"],
            record["state"], seen.get("provider_status") or record.get("provider_status"), done, failed,
            now - created, left, now - seen["changed_at"] if unfinished and seen else None, alert,
            record.get("cost_usd") or 0.0,
        ))
    rows.sort(key=lambda r: (not r.unfinished, -r.age_s))
    return rows


def duration(seconds: float | None) -> str:
    """``45s``, ``12m``, ``3h05m``, ``2d04h``; ``-`` for none; a leading ``-`` when overdue."""
    if seconds is None:
        return "-"
    sign, s = ("-", -seconds) if seconds < 0 else ("", seconds)
    if s < 60:
        return f"{sign}{s:.0f}s"
    if s < 3600:
        return f"{sign}{s // 60:.0f}m"
    if s < 86_400:
        return f"{sign}{s // 3600:.0f}h{s % 3600 // 60:02.0f}m"
    return f"{sign}{s // 86_400:.0f}d{s % 86_400 // 3600:02.0f}h"
