"""A provider's request type, read from its SDK, as plain data that can be kept between runs; pure.

Importing an SDK's request types costs about a second (``openai``, ``anthropic``), and botocore's
service model a few hundred milliseconds: more than checking ten thousand requests. So the type is read
once into a *shape*, a JSON document that ``core.request_types.compile_shape`` turns into a checker
without the SDK, and that ``providers.shape_cache`` keeps per SDK version.

A shape is ``{"root": node, "objects": {ref: object}}``. A node is one of
``{"any": true}``, ``{"kind": [json type, ...], "name": words}``, ``{"list": node}``,
``{"obj": ref}``, ``{"union": [node, ...], "nullable": bool, "kinds": [words, ...]}``;
an object is ``{"required": [name, ...], "fields": {name: node}, "tags": {name: [value, ...]},
"one_of": bool}``. Objects are named, so recursive types stay finite.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from typing_extensions import NotRequired, Required, is_typeddict

__all__ = ["ANY", "Shape", "of_botocore", "of_typeddict"]

Shape = dict[str, Any]
ANY: Shape = {"any": True}

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array",
               type(None): "null"}
_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
          "object": "an object", "array": "a list", "null": "null"}
_BOTOCORE = {"string": "string", "integer": "integer", "long": "integer", "float": "number", "double": "number",
             "boolean": "boolean"}


def kind(*json_types: str) -> Shape:
    """A node that takes values of these JSON types."""
    return {"kind": sorted(json_types), "name": " or ".join(sorted(_WORDS[t] for t in json_types))}


def of_typeddict(tp: Any) -> Shape:
    """The shape of an SDK's ``TypedDict`` request type."""
    objects: dict[str, Shape] = {}
    return {"root": _node(tp, objects), "objects": objects}


def _node(tp: Any, objects: dict[str, Shape]) -> Shape:
    if is_typeddict(tp):
        ref = f"{tp.__module__}.{tp.__qualname__}"
        if ref not in objects:
            objects[ref] = {}  # taken while its fields are read: a type that holds itself refers to it
            objects[ref] = _typeddict(tp, objects)
        return {"obj": ref}
    origin, args = get_origin(tp), get_args(tp)
    if origin is typing.Annotated or origin in (Required, NotRequired):
        return _node(args[0], objects)
    if origin in (Union, types.UnionType):
        options = [o for o in args if o is not type(None)]
        return {"union": [_node(o, objects) for o in options], "nullable": len(options) < len(args),
                "kinds": [_describe(o) for o in options]}
    if origin is Literal:
        json_types = {_JSON_TYPES.get(type(arg)) for arg in args}
        return ANY if None in json_types else kind(*typing.cast(set[str], json_types))
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence) or _is_sequence_not_str(origin):
        return {"list": _node(args[0], objects) if args else ANY}
    if origin in (dict, collections.abc.Mapping):
        return kind("object")
    if tp in (str, int, float, bool):
        return kind(_JSON_TYPES[tp])
    return ANY  # bytes, files, models, object: nothing JSON can be held to


def _typeddict(tp: Any, objects: dict[str, Shape]) -> Shape:
    hints = typing.get_type_hints(tp, include_extras=True)
    required = {name for name, hint in hints.items() if get_origin(hint) is Required}
    if getattr(tp, "__total__", True):
        required |= {name for name, hint in hints.items() if get_origin(hint) is not NotRequired}
    tags = {name: [v for v in get_args(_bare(hint)) if isinstance(v, (str, int, bool))]
            for name, hint in hints.items() if get_origin(_bare(hint)) is Literal}
    return {"required": sorted(required), "fields": {name: _node(hint, objects) for name, hint in hints.items()},
            "tags": tags, "one_of": False}


def _is_sequence_not_str(origin: Any) -> bool:
    return getattr(origin, "__name__", "") == "SequenceNotStr"


def _bare(hint: Any) -> Any:
    while get_origin(hint) in (typing.Annotated, Required, NotRequired):
        hint = get_args(hint)[0]
    return hint


def _describe(tp: Any) -> str:
    """What a value of this annotation is called in a fault: the words a value's own JSON type is matched to."""
    if is_typeddict(tp):
        return "an object"
    origin = get_origin(tp)
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence) or _is_sequence_not_str(origin):
        return "a list"
    if origin is Literal:
        return " or ".join(sorted({_WORDS.get(_JSON_TYPES.get(type(a), ""), "a value") for a in get_args(tp)}))
    if origin in (typing.Annotated, Required, NotRequired):
        return _describe(get_args(tp)[0])
    return _WORDS.get(_JSON_TYPES.get(tp, ""), "a value")


def of_botocore(shape: Any) -> Shape:
    """The shape of a botocore service model's input shape (``operation_model(...).input_shape``)."""
    objects: dict[str, Shape] = {}
    return {"root": _botocore_node(shape, objects), "objects": objects}


def _botocore_node(shape: Any, objects: dict[str, Shape]) -> Shape:
    type_name = shape.type_name
    if type_name == "structure":
        if shape.name not in objects:
            objects[shape.name] = {}  # the service's shapes are recursive (a document holds documents)
            objects[shape.name] = {
                "required": sorted(shape.required_members),
                "fields": {name: _botocore_node(member, objects) for name, member in shape.members.items()},
                "tags": {}, "one_of": bool(shape.metadata.get("union"))}
        return {"obj": shape.name}
    if type_name == "list":
        return {"list": _botocore_node(shape.member, objects)}
    if type_name == "map":
        return kind("object")
    return kind(_BOTOCORE[type_name]) if type_name in _BOTOCORE else ANY
