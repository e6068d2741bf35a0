"""Structured logging: one line per webhook, in key=value text or JSON.

The gateway's log is read by people running a bot in production, and by log
collectors. Each webhook gets one line saying what happened to it (platform,
sessions, how many events, status, latency) and nothing a log reader must not
see: no tokens, secrets or message text. Fields are given to the formatter as
data (``extra={"fields": ...}``), so the JSON form needs no parsing of text.

Uvicorn starts workers (``--workers``) and reloaded servers (``bottender dev``)
as fresh processes that do not inherit the parent's logging setup, so logging
is configured through uvicorn's ``log_config``, which every process applies.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import uvicorn.config

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Values that need no quoting in key=value form (no comma: it separates list items).
_BARE = re.compile(r"[A-Za-z0-9_.:/@+-]+")

access_logger = logging.getLogger("bottender.access")


def _quoted(text: str) -> str:
    """A JSON string literal in ASCII: no newline of any kind, NUL or raw quote survives."""
    return json.dumps(text, ensure_ascii=True)


def _value(value: Any) -> str:
    """One value, as one token that no content can break out of (log injection).

    Bare when it is made of safe characters only; otherwise a quoted, escaped
    string. A list whose items are all bare is joined with commas; any other
    list is written as one quoted JSON array, so its items stay distinct.
    """
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, list | tuple | set | frozenset):
        items = [str(v) for v in value]
        if all(_BARE.fullmatch(item) for item in items):
            return ",".join(items) or "-"
        return _quoted(json.dumps(items, ensure_ascii=True, separators=(",", ":")))
    text = str(value)
    return text if _BARE.fullmatch(text) else _quoted(text)


def key_values(fields: Mapping[str, Any]) -> str:
    """``platform=line status=200 sessions=line:U1,line:U2 latency_ms=3.2``."""
    return " ".join(f"{key}={_value(value)}" for key, value in fields.items())


def log_fields(logger: logging.Logger, level: int, event: str, fields: Mapping[str, Any]) -> None:
    """Log ``event`` with ``fields``: key=value in the text, the mapping for JSON."""
    if logger.isEnabledFor(level):
        extra = {"fields": dict(fields), "log_event": event}
        logger.log(level, "%s %s", event, key_values(fields), extra=extra)


def session_ids(keys: Iterable[str | None]) -> list[str]:
    """The distinct session ids of a webhook's events, in first-seen order."""
    return list(dict.fromkeys(key for key in keys if key))


def since_ms(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading)."""
    return round((time.perf_counter() - started) * 1000, 1)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if isinstance(fields, dict):
            entry["event"] = getattr(record, "log_event", "")
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_config(level: str = "info", fmt: str = "text") -> dict[str, Any]:
    """Uvicorn's logging config plus ours: the root logger (``bottender.*``, ``sessions.*``).

    With ``fmt="json"`` uvicorn's own lines are JSON too, so a collector reads
    one format.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, got {fmt!r}")
    config: dict[str, Any] = json.loads(json.dumps(uvicorn.config.LOGGING_CONFIG))
    if fmt == "json":
        formatter: dict[str, Any] = {"()": "bottender.server.logs.JsonFormatter"}
        config["formatters"]["default"] = formatter
        config["formatters"]["access"] = formatter
    else:
        formatter = {"format": TEXT_FORMAT}
    config["formatters"]["bottender"] = formatter
    config["handlers"]["bottender"] = {
        "formatter": "bottender",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["root"] = {"handlers": ["bottender"], "level": level.upper()}
    return config
