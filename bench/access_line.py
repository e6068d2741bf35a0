"""Micro-benchmark of the access line alone: ``python -m bench.access_line [N]``.

Times ``log_fields`` for one webhook's line, written to /dev/null, two ways: through
``logging`` (a LogRecord, the formatter, a StreamHandler's lock, write and flush per
line: the path before AccessLineHandler) and through ``AccessLineHandler`` (the line
built directly, written in batches by a timer of the event loop; the time includes
the last batch's write). Both run on an event loop, as in the gateway. Text and
JSON. A short run on one core; the gateway-level figure comes from ``bash
bench/run.sh`` (the default configuration, access line on).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from bottender.server.logs import TEXT_FORMAT, AccessLineHandler, JsonFormatter, log_fields

FIELDS = {
    "platform": "telegram",
    "status": 200,
    "events": 1,
    "sessions": ["telegram:7"],
    "answered": "done",
    "latency_ms": 1.3,
    "client": "127.0.0.1",
}


def _run(handler: logging.Handler, lines: int) -> float:
    logger = logging.getLogger("bench.access")
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO

    async def log() -> float:
        started = time.perf_counter()
        for _ in range(lines):
            log_fields(logger, logging.INFO, "webhook", FIELDS)
            if _ % 64 == 0:
                await asyncio.sleep(0)  # turns of the loop, as between webhooks
        handler.close()  # the fast handler writes its last batch here
        return (time.perf_counter() - started) / lines * 1e6

    return asyncio.run(log())


def main(lines: int = 50_000) -> None:
    with open("/dev/null", "w") as sink:
        for fmt in ("text", "json"):
            slow = logging.StreamHandler(sink)
            slow.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
            before = _run(slow, lines)
            after = _run(AccessLineHandler(fmt, sink), lines)
            print(f"{fmt:>4}: logging {before:6.2f} us/line, fast handler {after:6.2f} us/line")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
