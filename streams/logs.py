"""Structured logs: readable on a terminal, JSON elsewhere, never carrying a secret."""

from __future__ import annotations

import logging
import time
import re
import sys
from typing import Any, MutableMapping

import structlog

__all__ = ["configure_logging", "redact"]

# Whole words of a field name: ``api_key``, ``x-api-key``, ``access_token``; not ``input_tokens``.
_SECRET_KEY = re.compile(r"(?:^|[_-])(?:api[_-]?keys?|secrets?|token|authorization|password|credentials?)(?:$|[_-])",
                         re.IGNORECASE)
# Anthropic and OpenAI keys, Standard Webhooks secrets, bearer tokens, AWS access key ids.
_SECRET_VALUE = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|whsec_[A-Za-z0-9+/=]{8,}|Bearer\s+\S+|"
                           r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)")


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask values under secret-looking keys and anything shaped like an API key, at any depth.

    It runs after the traceback is formatted, so an SDK error quoting a key is masked too.
    """
    for key, value in event.items():
        event[key] = _masked(key, value)
    return event


def _masked(key: object, value: Any) -> Any:
    if isinstance(key, str) and _SECRET_KEY.search(key) and value not in (None, ""):
        return "***"
    if isinstance(value, str):
        return _SECRET_VALUE.sub("***", value) if _SECRET_VALUE.search(value) else value
    if isinstance(value, dict):
        return {k: _masked(k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(None, v) for v in value]
    return value


class _Repeats(logging.Filter):
    """A library's same message (its template, whatever the arguments) at most once every ``every_s``: a
    client retrying an absent broker says so a few times a second, for as long as it is away."""

    def __init__(self, every_s: float = 10.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self._every_s, self._clock = every_s, clock
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = (record.name, str(record.msg)), self._clock()
        if now - self._last.get(key, float("-inf")) < self._every_s:
            return False
        if len(self._last) > 10_000:
            self._last.clear()
        self._last[key] = now
        return True


def configure_logging(level: str = "info", fmt: str = "auto", libraries: str = "warning") -> None:
    """Set up structlog once for the process; ``fmt`` auto picks console on a TTY.

    The standard library's records (aiokafka, Faust, mode, botocore) go the same way, from
    ``libraries`` up: the same format, the same redaction, and the library's name as ``logger``.
    """
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.processors.add_log_level,
                           structlog.processors.TimeStamper(fmt="iso", utc=True)],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, redact, renderer]))
    handler.addFilter(_Repeats())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.getLevelName(libraries.upper()))
