"""Request shapes kept between runs, one file per SDK version: a check that needs no SDK import.

``tierline submit`` checks every line of a file before it publishes one, and a worker every item; the
check is compiled from the SDK's request type, and importing that type takes about a second. The shape
read from it (``core.request_shapes``) is written to ``$XDG_CACHE_HOME/tierline/request-shapes``
(``~/.cache/...`` by default) under a name made of the SDK's version, the type and the code that read it,
so that a new SDK, or a new tierline, reads its type afresh. A cache that cannot be read, written or
trusted (a file cut short, or edited into something that is not a shape) costs only the import: the
type is read again and the file written anew.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, Callable

import orjson
import structlog

import core.request_shapes
from core.request_shapes import Shape
from core.request_types import Check, compile_shape

__all__ = ["cache_dir", "cached_check", "sdk_type"]

log = structlog.get_logger(__name__)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tierline" / "request-shapes"


def cached_check(package: str, type_name: str, read: Callable[[], Shape],
                 without: frozenset[str] = frozenset(), require: dict[str, str] | None = None) -> Check:
    """The checker of ``type_name``, a request type of the installed ``package`` that ``read`` reads (importing
    it): from the cache when it holds that type for this version, else read and then kept."""
    path = cache_dir() / f"{package}-{_version(package)}-{type_name.replace(':', '.')}-{_reader_digest()}.json"
    try:
        return compile_shape(orjson.loads(path.read_bytes()), without, require)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:  # orjson's and compile_shape's errors are ValueErrors
        log.warning("request_shape_cache_unreadable", path=str(path), error=str(exc), note="read from the SDK again")
    shape = read()
    check = compile_shape(shape, without, require)
    _keep(path, orjson.dumps(shape))
    return check


def sdk_type(where: str) -> Any:
    """The SDK's type at ``module:name``, imported."""
    module, _, name = where.partition(":")
    return getattr(importlib.import_module(module), name)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@cache
def _reader_digest() -> str:
    """A digest of the code that reads shapes: a new tierline that reads them otherwise does not trust old ones."""
    return hashlib.sha256(Path(core.request_shapes.__file__).read_bytes()).hexdigest()[:12]


def _keep(path: Path, data: bytes) -> None:
    """Written whole or not at all (a rename), so that two processes starting together never read half a file."""
    written: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as out:
            written = out.name
            out.write(data)
        os.replace(written, path)
    except OSError as exc:
        if written is not None:
            Path(written).unlink(missing_ok=True)  # a read-only home, a full disk: the next run reads the SDK again
        log.info("request_shape_not_cached", path=str(path), error=str(exc))
