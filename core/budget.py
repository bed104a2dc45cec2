"""One daily budget across every worker: the grants of a one-partition log, folded in order; pure.

Each worker appends what it asks and what became of each batch to the budget topic, a single
partition, and every worker folds the same records in the same order: a ``reserve`` is granted
if the spend of its day, as folded so far, leaves room for its estimate, and refused otherwise.
Two workers releasing at the same moment append two reserves; the log puts one first, and the
second is judged with the first already counted, by every worker alike. No worker owns the budget,
so none has to be elected or fenced.

- ``reserve`` (batch_key, day, usd): a batch's estimate, asked for before it is released.
- ``settle`` (batch_key, usd): what it did cost once it ended (0 if the provider refused it).
- ``move`` (batch_key, from, usd): part of a granted batch's reservation passes to a batch made
  of some of its items (requeued whole, or split for a provider's queue): never refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.cost import DailyBudget

__all__ = ["BudgetLog"]


@dataclass(slots=True)
class BudgetLog:
    budget: DailyBudget
    folded: int = -1  # the offset of the last record folded in
    _granted: dict[str, int] = field(default_factory=dict)  # batch_key → offset of the reserve that was granted

    def apply(self, offset: int, doc: Any) -> None:
        """Fold in one record of the budget topic (one that is not a budget record changes nothing)."""
        self.folded = max(self.folded, offset)
        if not isinstance(doc, dict) or not isinstance(key := doc.get("batch_key"), str):
            return
        usd, kind = doc.get("usd"), doc.get("kind")
        if not isinstance(usd, (int, float)) or isinstance(usd, bool) or usd < 0:
            return
        if kind == "reserve" and isinstance(day := doc.get("day"), int):
            if key in self._granted:
                return  # asked again (after a crash, say): it has its grant
            if not self.budget.limit_usd or self.budget.spent_on(day) + usd <= self.budget.limit_usd:
                self._granted[key] = offset
                self.budget.record(key, day, float(usd))
        elif kind == "settle" and (counted := self.budget.counted(key)) is not None:
            self.budget.record(key, counted[0], float(usd))
        elif kind == "move" and isinstance(source := doc.get("from"), str) and key not in self._granted:
            if (counted := self.budget.counted(source)) is not None:
                day, left = counted
                self._granted[key] = offset
                self.budget.record(key, day, float(usd))
                self.budget.record(source, day, max(0.0, left - usd))

    def decision(self, batch_key: str, offset: int) -> bool | None:
        """Whether the reserve at ``offset`` was granted; None until the log has been folded that far."""
        if self.folded < offset:
            return None
        granted = self._granted.get(batch_key)
        return granted is not None and granted <= offset
