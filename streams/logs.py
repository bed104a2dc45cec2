"""Structured logs: readable on a terminal, JSON elsewhere, never carrying a secret."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

__all__ = ["configure_logging", "redact"]

_SECRET_KEY = re.compile(r"(api[_-]?key|secret|token|authorization|password)", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,}|Bearer\s+\S+)")


def redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Mask values under secret-looking keys and anything shaped like an API key."""
    for key, value in event.items():
        if _SECRET_KEY.search(key) and value not in (None, ""):
            event[key] = "***"
        elif isinstance(value, str) and _SECRET_VALUE.search(value):
            event[key] = _SECRET_VALUE.sub("***", value)
    return event


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Set up structlog once for the process; ``fmt`` auto picks console on a TTY."""
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
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
