"""The access log's fast handler writes exactly the lines ``logging`` would, in order."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
import re

import pytest

from bottender.server.logs import (
    TEXT_FORMAT,
    AccessLineHandler,
    JsonFormatter,
    log_config,
    log_fields,
)

FIELDS = {
    "platform": "telegram",
    "status": 200,
    "events": 1,
    "sessions": ["telegram:7"],
    "answered": "done",
    "latency_ms": 1.25,
    "client": "127.0.0.1",
    "error": 'quote " and space',
}


def through_logging(fmt: str) -> str:
    stream = io.StringIO()
    logger = logging.getLogger("test.access")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    log_fields(logger, logging.WARNING, "webhook", FIELDS)
    return stream.getvalue()


def through_fast_handler(fmt: str, lines: int = 1) -> str:
    stream = io.StringIO()
    logger = logging.getLogger("test.access")
    handler = AccessLineHandler(fmt, stream)
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    for _ in range(lines):
        log_fields(logger, logging.WARNING, "webhook", FIELDS)
    handler.close()  # what logging.shutdown does at exit: every queued line written
    return stream.getvalue()


def without_time(text: str) -> str:
    return re.sub(r"^\S+ \S+ |\"time\": \"[^\"]+\"", "", text, flags=re.M)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_fast_line_is_the_line_logging_makes(fmt) -> None:
    slow, fast = through_logging(fmt), through_fast_handler(fmt)
    assert without_time(fast) == without_time(slow)
    if fmt == "json":
        assert json.loads(fast)["error"] == 'quote " and space'
    else:
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING test\.access: ", fast)


def test_every_line_is_written_once_and_in_order() -> None:
    output = through_fast_handler("text", lines=5000).splitlines()
    assert len(output) == 5000 and all(line.endswith('"quote \\" and space"') for line in output)


def test_bottender_start_gives_the_access_log_its_own_handler() -> None:
    config = log_config("info", "json")
    assert config["loggers"]["bottender.access"]["propagate"] is False
    assert config["loggers"]["bottender.access"]["handlers"] == ["access_lines"]
    logging.config.dictConfig({**config, "disable_existing_loggers": False})
    try:
        [handler] = logging.getLogger("bottender.access").handlers
        assert isinstance(handler, AccessLineHandler) and handler.json
    finally:
        logging.getLogger("bottender.access").handlers = []
        logging.getLogger("bottender.access").propagate = True
        logging.getLogger("bottender.access").setLevel(logging.NOTSET)


class CountingStream(io.StringIO):
    """A stream that counts its ``write`` calls: one per batch is the point."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def fast_logger(stream: io.StringIO) -> tuple[logging.Logger, AccessLineHandler]:
    logger = logging.getLogger("test.access")
    handler = AccessLineHandler("text", stream)
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    return logger, handler


async def test_lines_logged_on_a_loop_share_one_write_soon_after() -> None:
    stream = CountingStream()
    logger, _ = fast_logger(stream)
    for _ in range(100):
        log_fields(logger, logging.INFO, "webhook", FIELDS)
    assert stream.writes == 0  # waiting for the others of this moment

    async with asyncio.timeout(5):
        while stream.getvalue().count("\n") < 100:  # noqa: ASYNC110 (written by a timer)
            await asyncio.sleep(0.01)
    assert stream.writes == 1


def test_no_line_is_left_behind_when_a_loop_ends_before_its_batch_is_written() -> None:
    stream = CountingStream()
    logger, handler = fast_logger(stream)

    async def log(count: int) -> None:
        for _ in range(count):
            log_fields(logger, logging.INFO, "webhook", FIELDS)

    asyncio.run(log(3))  # the loop closes before its flush timer fires
    assert stream.getvalue() == ""
    log_fields(logger, logging.INFO, "webhook", FIELDS)  # no loop: written at once, in order
    assert stream.getvalue().count("\n") == 4

    asyncio.run(log(2))  # a new loop gets a timer of its own
    handler.close()
    assert stream.getvalue().count("\n") == 6
