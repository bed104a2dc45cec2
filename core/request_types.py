"""Check a request body against the provider's own request types before it joins a batch.

The shapes come from the official SDKs, not from a copy of them: the ``TypedDict``
parameter types of ``anthropic`` and ``openai`` and botocore's service model of
Bedrock's Converse. Each is compiled once into a checker that walks a body and names
the first field at fault (``messages.0.content: ...``), so that one item with
``max_tokens: "20"`` is a dead letter instead of the reason a provider refuses the
batch it shares with thousands of good items.

What is checked is what the SDK's types can know: required fields, JSON types, the
discriminating field of a union (a message's ``role``, a content block's ``type``).
Unknown fields pass, and so do values of a plain ``Literal`` field that the SDK does
not list: the API may be newer than the installed SDK, and the provider still judges
the request (a refusal then isolates the item, see ``core.culprits``).
"""

from __future__ import annotations

import collections.abc
import types
import typing
from functools import cache
from typing import Any, Callable, Literal, Union, get_args, get_origin

from typing_extensions import NotRequired, Required, is_typeddict

__all__ = ["problem_in", "MAX_DEPTH", "depth_exceeds"]

#: Deepest nesting tierline accepts in ``params`` and ``metadata``. orjson writes at most
#: 254 levels, and tierline wraps both in a few levels of its own (lines, events).
MAX_DEPTH = 64


class Fault:
    """What is wrong with a value, and where: the path is added to on the way out of the walk, so that a
    value with nothing wrong (nearly every one) costs no path strings."""

    __slots__ = ("text", "_names")

    def __init__(self, text: str) -> None:
        self.text = text
        self._names: list[str] = []  # innermost first

    def at(self, name: str) -> Fault:
        """The same fault, seen from the object or list that holds the value under ``name``."""
        self._names.append(name)
        return self

    def __str__(self) -> str:
        return f"{'.'.join(reversed(self._names)) or 'params'}: {self.text}"


Check = Callable[[Any], "Fault | None"]  # value → what is wrong, or None


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and objects nest deeper than ``limit`` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, (dict, list)))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if isinstance(child, (dict, list)))
    return False


def problem_in(provider: str, endpoint: str | None, model: str | None, params: dict[str, Any]) -> str | None:
    """What is wrong with ``params`` for this provider's endpoint, naming the field; None if nothing known."""
    check = _checker(provider, endpoint, _bedrock_family(model) if provider == "bedrock" else None)
    fault = check(params) if check is not None else None
    return None if fault is None else str(fault)


def _bedrock_family(model: str | None) -> str | None:
    # An InvokeModel body is the model vendor's own: only Anthropic's is known here.
    return "anthropic" if model and "anthropic." in model else None


@cache
def _checker(provider: str, endpoint: str | None, family: str | None) -> Check | None:
    if provider == "anthropic":
        from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
        return _compile(MessageCreateParamsNonStreaming)
    if provider == "openai":
        if endpoint == "/v1/embeddings":
            from openai.types.embedding_create_params import EmbeddingCreateParams
            return _compile(EmbeddingCreateParams)
        if endpoint == "/v1/responses":
            from openai.types.responses.response_create_params import ResponseCreateParamsNonStreaming
            return _compile(ResponseCreateParamsNonStreaming)
        from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
        return _compile(CompletionCreateParamsNonStreaming)
    if provider == "bedrock" and endpoint == "Converse":
        return _converse()
    if provider == "gemini":
        return _generate_content
    if provider == "bedrock" and family == "anthropic":
        from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
        return _typeddict(MessageCreateParamsNonStreaming, without={"model"}, require={"anthropic_version": str})
    return None


# -- the SDKs' TypedDicts ---------------------------------------------------------------

_compiled: dict[Any, Check] = {}


def _compile(tp: Any) -> Check:
    """A checker for one annotation; TypedDicts are compiled once, recursive ones included."""
    if is_typeddict(tp):
        if tp not in _compiled:
            _compiled[tp] = lambda value: _compiled[tp](value)  # until compiled: recursion
            _compiled[tp] = _typeddict(tp)
        return _compiled[tp]
    origin, args = get_origin(tp), get_args(tp)
    if origin is typing.Annotated or origin in (Required, NotRequired):
        return _compile(args[0])
    if origin in (Union, types.UnionType):
        return _union(args)
    if origin is Literal:
        kinds = tuple({type(arg) for arg in args})
        return _kind(kinds, " or ".join(sorted(_NAMES.get(k, k.__name__) for k in kinds)))
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence) or _is_sequence_not_str(origin):
        return _list(_compile(args[0]) if args else _any)
    if origin in (dict, collections.abc.Mapping):
        return _kind((dict,), "an object")
    if tp in _SIMPLE:
        return _SIMPLE[tp]
    return _any  # bytes, files, models, object: nothing JSON can be held to


def _is_sequence_not_str(origin: Any) -> bool:
    return getattr(origin, "__name__", "") == "SequenceNotStr"


def _typeddict(tp: Any, without: frozenset[str] | set[str] = frozenset(),
               require: dict[str, Any] | None = None) -> Check:
    hints = typing.get_type_hints(tp, include_extras=True)
    required = {name for name, hint in hints.items() if get_origin(hint) is Required}
    if getattr(tp, "__total__", True):
        required |= {name for name, hint in hints.items() if get_origin(hint) is not NotRequired}
    fields = {name: _compile(hint) for name, hint in hints.items() if name not in without}
    required -= set(without)
    for name, hint in (require or {}).items():
        fields[name], required = _compile(hint), required | {name}
    need = sorted(required)

    def check(value: Any) -> Fault | None:
        if not isinstance(value, dict):
            return Fault(f"must be an object, not {_type_name(value)}")
        for name in need:
            if name not in value:
                return Fault("field required").at(name)
        for name, item in value.items():
            if (field := fields.get(name)) is not None and (fault := field(item)) is not None:
                return fault.at(name)
        return None

    check.required = need  # type: ignore[attr-defined]
    check.discriminators = {name: get_args(_bare(hint)) for name, hint in hints.items()  # type: ignore[attr-defined]
                            if get_origin(_bare(hint)) is Literal}
    return check


def _bare(hint: Any) -> Any:
    while get_origin(hint) in (typing.Annotated, Required, NotRequired):
        hint = get_args(hint)[0]
    return hint


def _union(options: tuple[Any, ...]) -> Check:
    nullable = type(None) in options
    options = tuple(o for o in options if o is not type(None))
    checks = [_compile(o) for o in options]
    dicts = [o for o in options if is_typeddict(o)]
    by_tag = _discriminated(dicts)
    others = [c for o, c in zip(options, checks, strict=True) if not is_typeddict(o)]
    kinds = [_describe(o) for o in options]
    described = " or ".join(sorted(set(kinds)))

    def check(value: Any) -> Fault | None:
        if value is None and nullable:
            return None
        if by_tag is not None and isinstance(value, dict):
            tag, chosen = by_tag
            if (option := chosen.get(value.get(tag))) is not None:
                return option(value)
            if not others:
                known = ", ".join(repr(v) for v in chosen)
                return Fault(f"{value.get(tag)!r} is not one of {known}").at(tag)
        faults = []
        for option in checks:
            if (fault := option(value)) is None:
                return None
            faults.append(fault)
        # The one option of the value's own JSON type says best what is wrong inside it.
        fitting = [f for f, kind in zip(faults, kinds, strict=True) if kind == _kind_of(value)]
        if len(fitting) == 1:
            return fitting[0]
        return Fault(f"must be {described}, not {_type_name(value)}")

    return check


def _discriminated(dicts: list[Any]) -> tuple[str, dict[Any, Check]] | None:
    """A field whose Literal value tells a union's TypedDicts apart (``type``, ``role``), if one does."""
    if len(dicts) < 2:
        return None
    compiled = [_compile(d) for d in dicts]
    for tag in ("type", "role"):
        chosen: dict[Any, Check] = {}
        for check in compiled:
            values = getattr(check, "discriminators", {}).get(tag)
            if not values or any(v in chosen for v in values):
                break
            chosen.update(dict.fromkeys(values, check))
        else:
            return tag, chosen
    return None


def _list(element: Check) -> Check:
    def check(value: Any) -> Fault | None:
        if not isinstance(value, list):
            return Fault(f"must be a list, not {_type_name(value)}")
        if element is not _any:
            for index, item in enumerate(value):
                if (fault := element(item)) is not None:
                    return fault.at(str(index))
        return None
    return check


def _kind(kinds: tuple[type, ...], name: str) -> Check:
    exact = bool not in kinds  # True is an int to Python, not to JSON
    floats = float in kinds

    def check(value: Any) -> Fault | None:
        if isinstance(value, kinds) and not (exact and isinstance(value, bool)):
            return None
        if floats and isinstance(value, int) and not isinstance(value, bool):
            return None
        return Fault(f"must be {name}, not {_type_name(value)}")
    return check


def _any(value: Any) -> Fault | None:
    return None


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "an object",
          list: "a list", type(None): "null"}
_SIMPLE: dict[Any, Check] = {
    str: _kind((str,), "a string"), int: _kind((int,), "an integer"), float: _kind((float,), "a number"),
    bool: _kind((bool,), "true or false"), object: _any, Any: _any,
}


def _describe(tp: Any) -> str:
    if is_typeddict(tp):
        return "an object"
    origin = get_origin(tp)
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence) or _is_sequence_not_str(origin):
        return "a list"
    if origin is Literal:
        return " or ".join(sorted({_NAMES.get(type(a), "a value") for a in get_args(tp)}))
    if origin in (typing.Annotated, Required, NotRequired):
        return _describe(get_args(tp)[0])
    return _NAMES.get(tp, "a value")


def _kind_of(value: Any) -> str:
    """The name ``_describe`` gives the annotations this value's JSON type could satisfy."""
    return "a number" if isinstance(value, float) else _type_name(value)


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


# -- Bedrock's Converse, from botocore's service model ----------------------------------------

def _generate_content(params: Any) -> Fault | None:
    """A Gemini ``GenerateContentRequest`` in its REST (camelCase) shape: google-genai's own types are
    its Python (snake_case) shape, so the few fields a batch cannot do without are checked here."""
    contents = params.get("contents")
    if not isinstance(contents, list) or not contents:
        return Fault("must be a non-empty list of {role, parts} objects").at("contents")
    for n, content in enumerate(contents):
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not all(isinstance(part, dict) for part in parts):
            return Fault("must be a list of objects such as {\"text\": ...}").at("parts").at(str(n)).at("contents")
    for name in ("generationConfig", "systemInstruction", "toolConfig", "cachedContent"):
        if name in params and not isinstance(params[name], str if name == "cachedContent" else dict):
            return Fault(f"must be {'a string' if name == 'cachedContent' else 'an object'}").at(name)
    config = params.get("generationConfig") or {}
    if "maxOutputTokens" in config and (isinstance(config["maxOutputTokens"], bool)
                                        or not isinstance(config["maxOutputTokens"], int)):
        return Fault("must be an integer").at("maxOutputTokens").at("generationConfig")
    return None


def _converse() -> Check:
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    shape = model.operation_model("Converse").input_shape
    # A batch record's modelInput is the request without the model: the job names it.
    return _shape(shape, without={"modelId"})


def _shape(shape: Any, without: set[str] = set()) -> Check:  # noqa: B006 - read only
    kind = shape.type_name
    if kind == "structure":
        members = {name: member for name, member in shape.members.items() if name not in without}
        required = [name for name in shape.required_members if name not in without]
        is_union = bool(shape.metadata.get("union"))
        fields: dict[str, Check] = {}

        def check(value: Any) -> Fault | None:
            if not isinstance(value, dict):
                return Fault(f"must be an object, not {_type_name(value)}")
            for name in required:
                if name not in value:
                    return Fault("field required").at(name)
            if is_union and len([k for k in value if k in members]) != 1:
                return Fault(f"must have exactly one of {', '.join(members)}")
            for name, item in value.items():
                if name in members:
                    if name not in fields:  # compiled when first met: the shapes are recursive
                        fields[name] = _shape(members[name])
                    if (fault := fields[name](item)) is not None:
                        return fault.at(name)
            return None
        return check
    if kind == "list":
        return _list(_shape(shape.member))
    if kind == "map":
        return _kind((dict,), "an object")
    return {"string": _SIMPLE[str], "integer": _SIMPLE[int], "long": _SIMPLE[int], "float": _SIMPLE[float],
            "double": _SIMPLE[float], "boolean": _SIMPLE[bool]}.get(kind, _any)
