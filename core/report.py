"""Spend and saving over result events, grouped by tier, provider and model, or by a metadata field
producers set (``metadata.team``, say); pure.

Each result event carries what it cost (``cost_usd``) and what the same tokens
would have cost at full price in the realtime tier (``realtime_usd``). At-least-once
delivery can put a result on the topic twice; the provider billed it once, so a
result counts once per (custom_id, re-run, provider batch).

Answers refused for not being what was asked (``core.answers``: invalid_answer, truncated, empty_answer) were
billed too: their failure events are counted apart, by reason, with what they cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.answers import ANSWER_FAILURES
from core.cost import billed_tokens

__all__ = ["SpendLine", "SpendReport", "Refused", "GROUPS", "NO_VALUE", "check_by"]

Group = tuple[str, ...]  # tier, provider, model; or the one metadata field's value
GROUPS = ("tier", "provider", "model")
#: The group of results whose metadata lacks the field grouped by.
NO_VALUE = "(none)"


def check_by(by: str | None) -> str | None:
    """Why ``by`` cannot group results, if it cannot: it names ``metadata.KEY``."""
    if by is None or (by.startswith("metadata.") and by.removeprefix("metadata.")):
        return None
    return f"cannot group by {by!r}: name a metadata field as metadata.KEY (metadata.team, say)"


@dataclass(slots=True)
class SpendLine:
    items: int = 0
    input_tokens: int = 0  # every input token read, from the prompt cache or not
    cached_tokens: int = 0  # of those, written to or read from the prompt cache
    output_tokens: int = 0
    cost_usd: float = 0.0
    realtime_usd: float = 0.0

    @property
    def saved_usd(self) -> float:
        return self.realtime_usd - self.cost_usd

    @property
    def saved_share(self) -> float:
        """The saving as a share of the realtime price (0 when nothing was spent)."""
        return self.saved_usd / self.realtime_usd if self.realtime_usd else 0.0

    def add(self, other: SpendLine) -> None:
        self.items += other.items
        self.input_tokens += other.input_tokens
        self.cached_tokens += other.cached_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.realtime_usd += other.realtime_usd

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "input_tokens": self.input_tokens, "cached_tokens": self.cached_tokens,
                "output_tokens": self.output_tokens,
                "cost_usd": round(self.cost_usd, 6), "realtime_usd": round(self.realtime_usd, 6),
                "saved_usd": round(self.saved_usd, 6), "saved_share": round(self.saved_share, 4)}


@dataclass(slots=True)
class Refused:
    """Answers refused for one reason: attempts that ended so, those that were the item's last, their cost."""

    attempts: int = 0
    final: int = 0
    cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "final": self.final, "cost_usd": round(self.cost_usd, 6)}


@dataclass(slots=True)
class SpendReport:
    by: str | None = None  # ``metadata.KEY``; None: tier, provider and model
    lines: dict[Group, SpendLine] = field(default_factory=dict)
    duplicates: int = 0
    refused: dict[str, Refused] = field(default_factory=dict)  # by reason
    #: With a daily budget: the cap, when today (UTC) began (ms), and what was spent since, per tier.
    cap_usd: float = 0.0
    today_from_ms: int | None = None
    today: dict[str, float] = field(default_factory=dict)
    _seen: set[tuple[str, str | None, str]] = field(default_factory=set, repr=False)
    _seen_refused: set[tuple[str, str | None, str, int]] = field(default_factory=set, repr=False)

    def add(self, event: dict[str, Any], at_ms: int | None = None) -> None:
        """Count one result event published at ``at_ms`` (a repeat of one already counted is only tallied as a
        duplicate)."""
        # A batch result is one per batch; a realtime or async one is one per provider response.
        once = event.get("batch_id") or (event.get("response") or {}).get("id") or ""
        seen = (event["custom_id"], event.get("reprocess"), once)
        if seen in self._seen:
            self.duplicates += 1
            return
        self._seen.add(seen)
        group = self._group(event)
        line = self.lines.get(group)
        if line is None:
            line = self.lines[group] = SpendLine()
        tokens = billed_tokens(event.get("usage"))
        line.items += 1
        line.input_tokens += tokens.read
        line.cached_tokens += tokens.cached
        line.output_tokens += tokens.output
        line.cost_usd += event.get("cost_usd") or 0.0
        line.realtime_usd += event.get("realtime_usd") or 0.0
        self._count_today(event, at_ms)

    def _count_today(self, event: dict[str, Any], at_ms: int | None) -> None:
        if self.today_from_ms is not None and at_ms is not None and at_ms >= self.today_from_ms:
            tier = event.get("tier") or "batch"
            self.today[tier] = self.today.get(tier, 0.0) + (event.get("cost_usd") or 0.0)

    def add_failure(self, event: dict[str, Any], at_ms: int | None = None) -> None:
        """Count one failure event, if it refused an answer (a repeat of one counted is only a duplicate)."""
        error = event.get("error")
        reason = error.get("type") if isinstance(error, dict) else None
        if reason not in ANSWER_FAILURES:
            return
        seen = (event["custom_id"], event.get("reprocess"), event.get("batch_id") or "", event.get("attempt") or 0)
        if seen in self._seen_refused:
            self.duplicates += 1
            return
        self._seen_refused.add(seen)
        line = self.refused.setdefault(reason, Refused())
        line.attempts += 1
        line.final += bool(event.get("final"))
        line.cost_usd += event.get("cost_usd") or 0.0
        self._count_today(event, at_ms)

    @property
    def heads(self) -> tuple[str, ...]:
        """What each group's fields are called."""
        return GROUPS if self.by is None else (self.by,)

    def _group(self, event: dict[str, Any]) -> Group:
        if self.by is None:
            return event.get("tier") or "batch", event["provider"], event.get("model") or "unknown"
        metadata = event.get("metadata")
        value = metadata.get(self.by.removeprefix("metadata.")) if isinstance(metadata, dict) else None
        return (NO_VALUE if value is None or value == "" else value if isinstance(value, str) else str(value),)

    def total(self) -> SpendLine:
        total = SpendLine()
        for line in self.lines.values():
            total.add(line)
        return total

    def rows(self) -> list[tuple[Group, SpendLine]]:
        """Most expensive group first."""
        return sorted(self.lines.items(), key=lambda row: (-row[1].cost_usd, row[0]))

    def as_dict(self) -> dict[str, Any]:
        return {
            "groups": [{**dict(zip(self.heads, group, strict=True)), **line.as_dict()} for group, line in self.rows()],
            "total": self.total().as_dict(),
            "refused_answers": {reason: line.as_dict() for reason, line in sorted(self.refused.items())},
            **({"today": {"cap_usd": self.cap_usd, "spent_usd": round(sum(self.today.values()), 6),
                          "by_tier": {tier: round(usd, 6) for tier, usd in sorted(self.today.items())}}}
               if self.cap_usd else {}),
            "duplicates_ignored": self.duplicates,
        }
