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

import asyncio
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import IO, Any

import uvicorn.config

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Values that need no quoting in key=value form (no comma: it separates list items).
_BARE = re.compile(r"[A-Za-z0-9_.:/@+-]+")
_bare = _BARE.fullmatch

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
    kind = type(value)
    if kind is str:  # the common case first: one line per webhook is built of these
        return value if _bare(value) else _quoted(value)
    if kind is int:
        return str(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, list | tuple | set | frozenset):
        items = [str(v) for v in value]
        if all(_bare(item) for item in items):
            return ",".join(items) or "-"
        return _quoted(json.dumps(items, ensure_ascii=True, separators=(",", ":")))
    text = str(value)
    return text if _bare(text) else _quoted(text)


def key_values(fields: Mapping[str, Any]) -> str:
    """``platform=line status=200 sessions=line:U1,line:U2 latency_ms=3.2``."""
    return " ".join(f"{key}={_value(value)}" for key, value in fields.items())


def log_fields(logger: logging.Logger, level: int, event: str, fields: Mapping[str, Any]) -> None:
    """Log ``event`` with ``fields``: key=value in the text, the mapping for JSON."""
    if logger.isEnabledFor(level):
        fast = _fast_handler(logger)
        if fast is not None:
            fast.write_fields(level, logger.name, event, fields)
            return
        extra = {"fields": dict(fields), "log_event": event}
        logger.log(level, "%s %s", event, key_values(fields), extra=extra)


def session_ids(keys: Iterable[str | None]) -> list[str]:
    """The distinct session ids of a webhook's events, in first-seen order."""
    return list(dict.fromkeys(key for key in keys if key))


def since_ms(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading)."""
    return round((time.perf_counter() - started) * 1000, 1)


def _fast_handler(logger: logging.Logger) -> AccessLineHandler | None:
    """The logger's :class:`AccessLineHandler` when it is the only place its lines go."""
    handlers = logger.handlers
    if len(handlers) == 1 and not logger.propagate and isinstance(handlers[0], AccessLineHandler):
        return handlers[0]
    return None


class AccessLineHandler(logging.Handler):
    """The access log's handler under ``bottender start``: the same lines, for less.

    ``log_fields`` hands it the fields directly, so a webhook's line skips ``logging``'s
    per-record machinery (a LogRecord, its attributes, the formatter's ``%`` formatting),
    with the timestamp text cached per second. Lines wait in a list for at most
    ``FLUSH_DELAY`` seconds (or ``MAX_BATCH`` lines) and are written together, one
    ``write`` per batch, by a timer on the event loop that logged them. No thread: a
    writer thread woken for every line cost more (a GIL hand-over and a context switch
    per webhook) than the write it saved. Outside a running loop (start-up, another
    thread, shutdown) a line is written at once. Text and JSON lines are as the
    formatters make them; records that come through ``logging`` itself are formatted
    and batched the same way. Used only when it is the access logger's one handler and
    the logger does not propagate (``log_config`` sets this up); otherwise
    ``log_fields`` takes the usual path. A process killed with SIGKILL loses the lines
    of its last ``FLUSH_DELAY`` seconds; any other exit writes them (``close``).
    """

    #: Seconds a line may wait for others to share its ``write``.
    FLUSH_DELAY = 0.05
    #: Lines written at once, whatever the delay.
    MAX_BATCH = 512

    def __init__(self, fmt: str = "text", stream: IO[str] | None = None) -> None:
        super().__init__()
        self.json = fmt == "json"
        self.stream = stream if stream is not None else sys.stderr
        self.setFormatter(JsonFormatter() if self.json else logging.Formatter(TEXT_FORMAT))
        self._batch: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._batch_thread = 0
        self._second = -1
        self._stamp = ""

    def write_fields(self, level: int, name: str, event: str, fields: Mapping[str, Any]) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            pattern = "%Y-%m-%dT%H:%M:%S" if self.json else "%Y-%m-%d %H:%M:%S"
            self._second, self._stamp = second, time.strftime(pattern, time.localtime(second))
        level_name = logging.getLevelName(level)
        if self.json:
            entry = {"time": self._stamp, "level": level_name.lower(), "logger": name}
            entry["event"] = event
            entry.update(fields)
            line = json.dumps(entry, ensure_ascii=False, default=str)
        else:
            millis = int((now - second) * 1000)
            line = f"{self._stamp},{millis:03d} {level_name} {name}: {event} {key_values(fields)}"
        self._put(line)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._put(self.format(record))
        except Exception:
            self.handleError(record)

    def _put(self, line: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: nothing would flush a batch later
            # The batch belongs to the loop's thread; from it (after the loop), its lines first.
            mine = threading.get_ident() == self._batch_thread
            self._write([*self._take(), line] if mine else [line])
            return
        self._batch.append(line)
        if len(self._batch) >= self.MAX_BATCH:
            self.flush()
        elif self._timer_loop is not loop:  # no timer yet, or one on a loop that has ended
            self._batch_thread = threading.get_ident()
            self._timer_loop = loop
            self._timer = loop.call_later(self.FLUSH_DELAY, self.flush)

    def _take(self) -> list[str]:
        batch, self._batch = self._batch, []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_loop = None
        return batch

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        with self.lock:  # type: ignore[union-attr]  # Handler.createLock made it
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed stderr must not take the server down

    def flush(self) -> None:
        """Write the lines waiting (the timer, a full batch, ``logging.shutdown``)."""
        self._write(self._take())

    def close(self) -> None:
        """Write every waiting line before the process exits (``logging.shutdown`` calls this)."""
        self.flush()
        super().close()


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
    # The access log, one line per webhook, is the hot one: its own handler (see
    # AccessLineHandler), not propagated, so each line is built and written once.
    config["handlers"]["access_lines"] = {
        "()": "bottender.server.logs.AccessLineHandler",
        "fmt": fmt,
    }
    config["loggers"]["bottender.access"] = {
        "handlers": ["access_lines"],
        "level": level.upper(),
        "propagate": False,
    }
    return config
