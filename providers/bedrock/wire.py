"""Bedrock's batch records and request types; pure.

A Bedrock item names its ``model`` beside its body (an InvokeModel body is the model vendor's own, and
names none; a Converse request takes it from the job) and its ``invocation``: ``invoke`` or ``converse``,
one per job. Its record is ``{"recordId", "modelInput"}``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from core.answers import Reading
from core.limits import BatchGroup
from core.request_shapes import Shape, of_botocore, of_typeddict
from core.request_types import Check, problem
from core.retry import is_retryable
from core.spec import Item
from core.validation import Rejected
from providers.bedrock import answers
from providers.anthropic.wire import MESSAGES
from providers.base import ItemOutcome, ResultFormat
from providers.shape_cache import cached_check, sdk_type
from schemas import ErrorInfo

__all__ = ["RESULTS", "outcome", "INVOCATIONS", "INVOCATION_OF", "Wire"]

#: ``invocation`` of an item → the job's ``modelInvocationType``.
INVOCATIONS = {"invoke": "InvokeModel", "converse": "Converse"}
INVOCATION_OF = {kind: name for name, kind in INVOCATIONS.items()}


_ERROR_NAMES = {400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
                408: "ModelTimeoutException", 424: "ModelErrorException", 429: "ThrottlingException",
                500: "InternalServerException", 503: "ServiceUnavailableException"}


def outcome(line: dict[str, Any]) -> ItemOutcome:
    record_id = str(line.get("recordId", ""))
    output = line.get("modelOutput")
    if output is not None and not line.get("error"):
        return ItemOutcome(record_id, output, output.get("usage") if isinstance(output, dict) else None, None)
    error = line.get("error") or {}
    code = error.get("errorCode")
    status = code if isinstance(code, int) else int(str(code)) if str(code).isdigit() else None
    if status is not None:
        kind = _ERROR_NAMES.get(status, f"http_{status}")
    else:
        kind = str(code) if code else "unknown_error"
    info = ErrorInfo(type=kind, message=error.get("errorMessage") or kind)
    return ItemOutcome(record_id, None, None, info, is_retryable(kind, status))


#: A record of the output: ``{"recordId", "modelInput", "modelOutput"}``, or ``{..., "error": {"errorCode",
#: "errorMessage"}}``.
RESULTS = ResultFormat("recordId", outcome)


class Wire:
    schema: dict[str, Any] = {"required": ["model"], "properties": {"model": {"type": "string"}}}
    results = RESULTS

    def fields(self, doc: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | Rejected:
        model = doc.get("model")
        if not isinstance(model, str) or not model or len(model) > 2048 or any(c.isspace() for c in model):
            return Rejected("missing_model", "model is required for bedrock: a Bedrock model id (such as "
                            "anthropic.claude-3-5-haiku-20241022-v1:0) or an inference-profile ARN")
        invocation = doc.get("invocation") or "invoke"
        if invocation not in INVOCATIONS:
            return Rejected("unsupported_invocation", f"invocation {invocation!r} is not one of: "
                            f"{', '.join(INVOCATIONS)} (params is then an InvokeModel or a Converse body)")
        return {"model": model, "invocation": invocation}

    def problem(self, endpoint: str | None, fields: dict[str, Any], params: dict[str, Any]) -> str | None:
        if fields["invocation"] == "converse":
            return problem(_converse(), params)
        # An InvokeModel body is the model vendor's own: only Anthropic's is known here.
        return problem(_anthropic_invoke(), params) if "anthropic." in fields["model"] else None

    def line(self, item: Item) -> bytes:
        return orjson.dumps({"recordId": item.custom_id, "modelInput": item.params})

    def group(self, item: Item) -> BatchGroup:
        return BatchGroup(item.provider, INVOCATIONS[item.invocation or "invoke"], item.model)

    def job_fields(self, group: BatchGroup) -> dict[str, Any]:
        return {"model": group.model, "invocation": INVOCATION_OF.get(group.endpoint or "")}

    def sync_path(self, item: Item) -> str:
        return INVOCATIONS[item.invocation or "invoke"]  # an operation of bedrock-runtime, not a path

    def answer_schema(self, item: Item) -> dict[str, Any] | None:
        return answers.answer_schema(item.invocation, item.params)

    def reading(self, response: dict[str, Any]) -> Reading | None:
        return answers.reading(response)

    def sync_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def model(self, item: Item) -> str:
        return item.model or ""


@cache
def _anthropic_invoke() -> Check:
    """Anthropic's Messages request as Bedrock's InvokeModel takes it: no model, an ``anthropic_version``."""
    return cached_check("anthropic", MESSAGES, lambda: of_typeddict(sdk_type(MESSAGES)), without=frozenset({"model"}),
                        require={"anthropic_version": "string"})


@cache
def _converse() -> Check:
    """Converse's request, from botocore's service model; a record's ``modelInput`` has no ``modelId``."""
    return cached_check("botocore", "bedrock-runtime:Converse", _read_converse, without=frozenset({"modelId"}))


def _read_converse() -> Shape:
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    return of_botocore(model.operation_model("Converse").input_shape)
