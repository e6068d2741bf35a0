"""The access log's fast handler writes exactly the lines ``logging`` would, in order."""

from __future__ import annotations

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
