"""Access lines cannot be forged: every value is one token, whatever it holds.

A value made only of safe characters is written bare; anything else is a quoted
ASCII JSON string, so no newline (of any kind), NUL, space or quote in a value can
start a new line or a new key=value pair. The JSON format is unaffected: it gets
the values themselves.
"""

from __future__ import annotations

import json
import logging
import re

import pytest

from bottender.server.logs import JsonFormatter, key_values, log_fields

#: One key=value pair: a bare value, or a JSON string literal.
PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]+)(?:\s|$)')


def parse(line: str) -> dict[str, str]:
    """Read a key=value line back; fails if any part of it is not a pair."""
    pairs = PAIR.findall(line)
    assert " ".join(f"{k}={v}" for k, v in pairs) == line
    return dict(pairs)


def decode(token: str) -> str:
    return json.loads(token) if token.startswith('"') else token


@pytest.mark.parametrize(
    "value",
    [
        "U1\nFAKE status=200",
        "a\rb",
        "nul\0byte",
        'say "hi"',
        "two words",
        "line\u2028separator",
        "next\x85line",
        "tab\there",
        "back\\slash",
        "",
        "ユーザー",
        "a,b",
    ],
)
def test_a_value_of_any_content_reads_back_as_itself_and_nothing_else(value):
    line = key_values({"error": value, "status": 400})
    assert line.isascii() and line.isprintable()
    fields = parse(line)
    assert list(fields) == ["error", "status"]
    assert decode(fields["error"]) == value
    assert fields["status"] == "400"


def test_a_list_of_safe_ids_stays_comma_joined_and_a_forged_one_is_quoted_whole():
    assert key_values({"sessions": ["line:U1", "telegram:-100"]}) == (
        "sessions=line:U1,telegram:-100"
    )
    forged = ["line:U1", "line:U2\nFAKE status=200", "a,b"]
    fields = parse(key_values({"sessions": forged, "status": 200}))
    assert json.loads(decode(fields["sessions"])) == forged
    assert fields["status"] == "200"


def test_the_json_format_keeps_the_values_unchanged(caplog):
    logger = logging.getLogger("bottender.access.test")
    with caplog.at_level(logging.INFO, logger=logger.name):
        log_fields(logger, logging.INFO, "webhook", {"sessions": ["line:U1\nX"], "status": 200})
    (record,) = caplog.records
    entry = json.loads(JsonFormatter().format(record))
    assert entry["sessions"] == ["line:U1\nX"]
    assert entry["status"] == 200
    assert "\n" not in JsonFormatter().format(record)
