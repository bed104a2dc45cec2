"""Check a request body against the provider's own request types before it joins a batch: the machinery.

The shapes come from the official SDKs, not from a copy of them: the ``TypedDict``
parameter types of ``anthropic`` and ``openai``, and botocore's service model of
Bedrock's Converse (each provider's wire says which it takes). Each is compiled once
into a checker that walks a body and names the first field at fault (``messages.0.content: ...``), so that one item with
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
from typing import Any, Callable, Literal, Union, get_args, get_origin

from typing_extensions import NotRequired, Required, is_typeddict

__all__ = ["Check", "Fault", "MAX_DEPTH", "SIMPLE", "anything", "compile_type", "depth_exceeds", "json_kind", "list_of",
           "problem", "type_name", "typeddict"]

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


def problem(check: Check | None, params: dict[str, Any]) -> str | None:
    """What ``check`` finds wrong with ``params``, naming the field; None if nothing (or nothing to check)."""
    fault = check(params) if check is not None else None
    return None if fault is None else str(fault)


# -- the SDKs' TypedDicts ---------------------------------------------------------------

_compiled: dict[Any, Check] = {}


def compile_type(tp: Any) -> Check:
    """A checker for one annotation; TypedDicts are compiled once, recursive ones included."""
    if is_typeddict(tp):
        if tp not in _compiled:
            _compiled[tp] = lambda value: _compiled[tp](value)  # until compiled: recursion
            _compiled[tp] = typeddict(tp)
        return _compiled[tp]
    origin, args = get_origin(tp), get_args(tp)
    if origin is typing.Annotated or origin in (Required, NotRequired):
        return compile_type(args[0])
    if origin in (Union, types.UnionType):
        return _union(args)
    if origin is Literal:
        kinds = tuple({type(arg) for arg in args})
        return json_kind(kinds, " or ".join(sorted(_NAMES.get(k, k.__name__) for k in kinds)))
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence) or _is_sequence_not_str(origin):
        return list_of(compile_type(args[0]) if args else anything)
    if origin in (dict, collections.abc.Mapping):
        return json_kind((dict,), "an object")
    if tp in SIMPLE:
        return SIMPLE[tp]
    return anything  # bytes, files, models, object: nothing JSON can be held to


def _is_sequence_not_str(origin: Any) -> bool:
    return getattr(origin, "__name__", "") == "SequenceNotStr"


def typeddict(tp: Any, without: frozenset[str] | set[str] = frozenset(),
               require: dict[str, Any] | None = None) -> Check:
    hints = typing.get_type_hints(tp, include_extras=True)
    required = {name for name, hint in hints.items() if get_origin(hint) is Required}
    if getattr(tp, "__total__", True):
        required |= {name for name, hint in hints.items() if get_origin(hint) is not NotRequired}
    fields = {name: compile_type(hint) for name, hint in hints.items() if name not in without}
    required -= set(without)
    for name, hint in (require or {}).items():
        fields[name], required = compile_type(hint), required | {name}
    need = sorted(required)

    def check(value: Any) -> Fault | None:
        if not isinstance(value, dict):
            return Fault(f"must be an object, not {type_name(value)}")
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
    checks = [compile_type(o) for o in options]
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
        return Fault(f"must be {described}, not {type_name(value)}")

    return check


def _discriminated(dicts: list[Any]) -> tuple[str, dict[Any, Check]] | None:
    """A field whose Literal value tells a union's TypedDicts apart (``type``, ``role``), if one does."""
    if len(dicts) < 2:
        return None
    compiled = [compile_type(d) for d in dicts]
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


def list_of(element: Check) -> Check:
    def check(value: Any) -> Fault | None:
        if not isinstance(value, list):
            return Fault(f"must be a list, not {type_name(value)}")
        if element is not anything:
            for index, item in enumerate(value):
                if (fault := element(item)) is not None:
                    return fault.at(str(index))
        return None
    return check


def json_kind(kinds: tuple[type, ...], name: str) -> Check:
    exact = bool not in kinds  # True is an int to Python, not to JSON
    floats = float in kinds

    def check(value: Any) -> Fault | None:
        if isinstance(value, kinds) and not (exact and isinstance(value, bool)):
            return None
        if floats and isinstance(value, int) and not isinstance(value, bool):
            return None
        return Fault(f"must be {name}, not {type_name(value)}")
    return check


def anything(value: Any) -> Fault | None:
    return None


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "an object",
          list: "a list", type(None): "null"}
SIMPLE: dict[Any, Check] = {
    str: json_kind((str,), "a string"), int: json_kind((int,), "an integer"), float: json_kind((float,), "a number"),
    bool: json_kind((bool,), "true or false"), object: anything, Any: anything,
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
    return "a number" if isinstance(value, float) else type_name(value)


def type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
