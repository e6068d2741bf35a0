"""What ``set_state`` accepts is exactly what every store can save, checked at the call.

A value refused here would otherwise fail (or change) when the store is written,
after the bot has already replied: the request would answer 503 and the
platform's redelivery would send the bot's replies again.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

import bson
import orjson
import pytest

from bottender.connectors.base import json_copy

UNSAVABLE: dict[str, Any] = {
    "datetime": datetime.datetime(2026, 12, 2, 10, 0),
    "set": {1, 2},
    "bytes": b"raw",
    "int key": {1: "one"},
    "huge int": 2**64,
    "past int64": 2**63,
    "below int64": -(2**63) - 1,
    "past int64, nested": {"visits": [1, 2**64 - 1]},
    "nan": math.nan,
    "infinity": [1.0, math.inf],
    "nul in a key": {"profile": {"a\x00b": 1}},
}
SAVABLE: dict[str, Any] = {
    "nested": {"profile": {"name": "ann", "tags": ["a", None]}, "count": 3},
    "nul in a value": {"note": "a\x00b"},
    "none": {"last": None},
    "unicode": {"名前": "アン", "emoji": "🍰"},
    "float": {"price": 3.5, "big": 1e300},
    "int64 bounds": {"most": 2**63 - 1, "least": -(2**63)},
    "long digit strings": {"card": "1234567890123456789012", "tiny": 1.2345678901234567e-300},
}


@pytest.mark.parametrize("name", sorted(UNSAVABLE))
def test_values_some_store_cannot_keep_are_refused_at_the_call(name):
    with pytest.raises(TypeError, match="set_state"):
        json_copy({"value": UNSAVABLE[name]}, "set_state")


@pytest.mark.parametrize("name", sorted(SAVABLE))
def test_what_is_accepted_survives_json_and_bson_unchanged(name):
    value = SAVABLE[name]
    copied = json_copy(value, "set_state")
    assert copied == value and copied is not value
    assert orjson.loads(orjson.dumps(copied)) == value  # the memory, file and redis stores
    assert bson.decode(bson.encode({"state": copied}))["state"] == value  # the mongo store


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"n": 2**63}, "['n']"),
        ({"visits": [1, 2**64 - 1]}, "['visits'][1]"),
        ({"a.b": {"[0]": -(2**64)}}, "['a.b']['[0]']"),  # past what orjson writes, too
    ],
)
def test_an_integer_past_int64_is_refused_naming_its_key_path(value, path):
    with pytest.raises(TypeError, match="does not fit in signed 64 bits") as refused:
        json_copy(value, "set_state")
    assert str(refused.value).startswith("set_state: the integer ")
    assert f" at {path} " in str(refused.value)


def test_a_value_holding_itself_or_nested_past_any_limit_is_refused_not_walked_forever():
    itself: dict[str, Any] = {"n": 2**64}
    itself["a"] = itself["b"] = itself  # 2**254 paths, were each walked
    deep: Any = [2**64]
    for _ in range(100_000):
        deep = [deep]
    for value in (itself, deep):
        with pytest.raises(TypeError, match="set_state"):
            json_copy({"value": value}, "set_state")


def test_the_read_only_view_shows_a_stored_integer_past_int64_as_it_is():
    """A state stored before the rule (file or redis kept it) must still be readable."""
    assert json_copy({"n": 2**63}, "state", int64=False) == {"n": 2**63}


def test_an_integer_past_int64_is_one_mongodb_would_refuse_after_the_reply():
    with pytest.raises(OverflowError):
        bson.encode({"state": {"n": 2**63}})


def test_the_nul_key_refused_here_is_one_mongodb_would_refuse_after_the_reply():
    with pytest.raises(bson.errors.InvalidDocument):
        bson.encode({"state": UNSAVABLE["nul in a key"]})
