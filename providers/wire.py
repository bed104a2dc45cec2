"""What the wires of several providers share: a body that names its own model; pure."""

from __future__ import annotations

from typing import Any

from core.limits import BatchGroup
from core.validation import Rejected
from core.spec import Item

__all__ = ["ModelInBody", "REFUSED_AT_CREATE"]

#: What a provider that checks no single request at create cannot have (``ProviderSpec.cannot``): a bad request
#: fails alone in the batch's results, as one the model refuses.
REFUSED_AT_CREATE = {mode: "validates no single request at create: a bad one fails alone in the results (the row "
                           "of an item the model refuses)"
                     for mode in ("an item refused at create, named", "an item refused at create, unnamed")}


class ModelInBody:
    """A wire whose request body names the model (``params.model``), sent as the body it is."""

    schema: dict[str, Any] = {"properties": {"params": {"required": ["model"]}}}

    def fields(self, doc: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | Rejected:
        model = params.get("model")
        return {} if isinstance(model, str) and model else Rejected("missing_model", "params.model is required")

    def job_fields(self, group: BatchGroup) -> dict[str, Any]:
        return {}

    def sync_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def model(self, item: Item) -> str:
        return str(item.params.get("model", ""))
