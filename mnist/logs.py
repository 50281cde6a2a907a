"""Structured logs: the `mnist` loggers write one JSON object per line to stderr.

A line is {"time", "level", "logger", "event", ...fields}: an event name a machine can count and the
fields that explain it. Callers pass fields through `event()`; never a URL with its password, a
token or a request header (describe() the database, say whether a token is set).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

ROOT_LOGGER = "mnist"


class JsonLines(logging.Formatter):
    """One JSON object per record; `extra={"fields": {...}}` becomes top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: int = logging.INFO) -> None:
    """Give the `mnist` loggers one JSON-lines handler on stderr (once per process; repeat calls do nothing)."""
    logger = logging.getLogger(ROOT_LOGGER)
    if not any(isinstance(h.formatter, JsonLines) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonLines())
        logger.addHandler(handler)
    logger.setLevel(level)


def event(logger: logging.Logger, name: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log the event `name` with its fields as one structured line."""
    logger.log(level, name, extra={"fields": fields})
