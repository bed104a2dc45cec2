"""Check a request body against the provider's own request types before it joins a batch: the machinery.

The shapes come from the official SDKs, not from a copy of them: the ``TypedDict``
parameter types of ``anthropic`` and ``openai``, and botocore's service model of
Bedrock's Converse (each provider's wire says which it takes), read into plain data by
``core.request_shapes`` and kept between runs by ``providers.shape_cache``. Each is compiled
once into a checker that walks a body and names the first field at fault
(``messages.0.content: ...``), so that one item with ``max_tokens: "20"`` is a dead letter
instead of the reason a provider refuses the batch it shares with thousands of good items.

What is checked is what the SDK's types can know: required fields, JSON types, the
discriminating field of a union (a message's ``role``, a content block's ``type``).
Unknown fields pass, and so do values of a plain ``Literal`` field that the SDK does
not list: the API may be newer than the installed SDK, and the provider still judges
the request (a refusal then isolates the item, see ``core.culprits``).
"""

from __future__ import annotations

from typing import Any, Callable

from core.request_shapes import Shape, kind

__all__ = ["Check", "Fault", "MAX_DEPTH", "anything", "compile_shape", "depth_exceeds", "json_kind", "list_of",
           "problem", "type_name"]

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


# -- a shape made into a checker --------------------------------------------------------

def compile_shape(shape: Shape, without: frozenset[str] | set[str] = frozenset(),
                  require: dict[str, str] | None = None) -> Check:
    """A checker for a request shape (``core.request_shapes``): the root object less the fields ``without``, and
    with those of ``require`` (name → JSON type) required. Every object the root reaches is compiled now, so a
    malformed shape fails here (``ValueError``), never while a request is checked."""
    try:
        return _compile(shape, without, require)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a request shape: {type(exc).__name__}: {exc}") from exc


def _compile(shape: Shape, without: frozenset[str] | set[str], require: dict[str, str] | None) -> Check:
    objects: dict[str, Shape] = shape["objects"]
    compiled: dict[str, Check] = {}

    def node(n: Shape) -> Check:
        if "obj" in n:
            ref = n["obj"]
            if ref not in compiled:
                compiled[ref] = lambda value: compiled[ref](value)  # until compiled: recursion
                compiled[ref] = _object(objects[ref], node)
            return compiled[ref]
        if "kind" in n:
            return json_kind(tuple(_TYPES[t] for t in n["kind"]), n["name"])
        if "list" in n:
            return list_of(node(n["list"]))
        if "union" in n:
            return _union([node(o) for o in n["union"]], [objects[o["obj"]] if "obj" in o else None
                                                         for o in n["union"]], n["kinds"], n["nullable"])
        if n.get("any") is True:
            return anything
        raise ValueError(f"not a node of a request shape: {n!r:.200}")

    root = shape["root"]
    if without or require:
        adjusted = dict(objects[root["obj"]])
        adjusted["fields"] = {**{k: v for k, v in adjusted["fields"].items() if k not in without},
                              **{name: kind(t) for name, t in (require or {}).items()}}
        adjusted["required"] = sorted({*adjusted["required"], *(require or {})} - set(without))
        return _object(adjusted, node)
    return node(root)


def _object(spec: Shape, node: Callable[[Shape], Check]) -> Check:
    fields = {name: node(field) for name, field in spec["fields"].items()}
    need: list[str] = list(spec["required"])
    one_of = bool(spec.get("one_of"))

    def check(value: Any) -> Fault | None:
        if not isinstance(value, dict):
            return Fault(f"must be an object, not {type_name(value)}")
        for name in need:
            if name not in value:
                return Fault("field required").at(name)
        if one_of and sum(1 for k in value if k in fields) != 1:
            return Fault(f"must have exactly one of {', '.join(fields)}")
        for name, item in value.items():
            if (field := fields.get(name)) is not None and (fault := field(item)) is not None:
                return fault.at(name)
        return None
    return check


def _union(checks: list[Check], objects: list[Shape | None], kinds: list[str], nullable: bool) -> Check:
    if len(kinds) != len(checks):
        raise ValueError("a union's options and their words do not pair up")
    by_tag = _discriminated(checks, objects)
    others = [c for c, o in zip(checks, objects, strict=True) if o is None]
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


def _discriminated(checks: list[Check], objects: list[Shape | None]) -> tuple[str, dict[Any, Check]] | None:
    """A field whose literal value tells a union's objects apart (``type``, ``role``), if one does."""
    tagged = [(c, o) for c, o in zip(checks, objects, strict=True) if o is not None]
    if len(tagged) < 2:
        return None
    for tag in ("type", "role"):
        chosen: dict[Any, Check] = {}
        for check, spec in tagged:
            values = spec["tags"].get(tag)
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


_TYPES: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool, "object": dict,
                           "array": list, "null": type(None)}


def _kind_of(value: Any) -> str:
    """The words a union's shape gives the options this value's JSON type could satisfy."""
    return "a number" if isinstance(value, float) else type_name(value)


def type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
