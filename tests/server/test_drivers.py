"""The session guide's promises hold on every driver: a bot cannot tell which store it is on.

The same bot and the same requests run through the live gateway once per
driver, each on a real backend (a directory, a Redis server, a MongoDB-wire
server), with the gateway's clock faked so expiry needs no sleeping.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gateway import FakeClock
from tests.server.updates import text_update

INITIAL = {"count": 0, "profile": {"name": "ann", "lang": "en"}, "tags": ["a"]}


def store_options(driver: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:12]
    if driver == "memory":
        return {}
    if driver == "file":
        return {"dirname": str(tmp_path / "sessions")}
    if driver == "redis":
        return {"url": request.getfixturevalue("redis_server"), "prefix": f"drivers-{tag}:"}
    url = request.getfixturevalue("mongo_server").rstrip("/")
    return {"url": f"{url}/drivers{tag}"}


@pytest.fixture
def clock() -> FakeClock:
    # From the real time: Redis and MongoDB expire keys and documents by their own clocks.
    return FakeClock(time.time())


@pytest.fixture(params=["memory", "file", "redis", "mongo"])
def bot(request: pytest.FixtureRequest, telegram_bot, clock, tmp_path: Path):
    driver = request.param
    session = {
        "driver": driver,
        "expires_in": 0.5,
        "stores": {driver: store_options(driver, tmp_path, request)},
    }
    return telegram_bot(
        "tests.bots:state_probe", initial_state=INITIAL, session=session, clock=clock
    )


def test_set_state_merges_shallowly_and_the_store_keeps_it_so(bot):
    merged = {"count": 0, "profile": {"name": "bob"}, "tags": ["a"]}

    assert bot.ask('set {"profile": {"name": "bob"}}') == merged
    assert bot.ask('set {"count": 5, "mood": "happy"}') == {**merged, "count": 5, "mood": "happy"}

    # Read back from the store itself, then by the next event: "lang" is gone for good.
    assert bot.state() == {**merged, "count": 5, "mood": "happy"}
    assert bot.ask("show") == {**merged, "count": 5, "mood": "happy"}


def test_reset_state_is_saved_as_initial_state(bot):
    bot.ask('set {"count": 3, "extra": true, "profile": {}}')

    assert bot.ask("reset") == INITIAL
    assert bot.state() == INITIAL


def test_an_inactive_session_expires_and_an_active_one_does_not(bot, clock):
    bot.ask('set {"count": 5}', chat_id=1)
    bot.ask('set {"count": 6}', chat_id=2)
    clock.advance(20)
    bot.ask("show", chat_id=2)  # chat 2 stays active
    clock.advance(15)  # chat 1 inactive for 35 s, chat 2 for 15 s; expires_in is 30 s

    assert bot.ask("show", chat_id=1) == INITIAL
    assert bot.ask("show", chat_id=2) == {**INITIAL, "count": 6}


def test_a_redelivered_update_runs_once(bot):
    update = text_update(901, 'set {"count": 1}')
    assert bot.post(update).status == 200
    assert bot.post(text_update(902, 'set {"count": 2}')).status == 200

    assert bot.post(update).status == 200  # Telegram sends update 901 again

    assert len(bot.replies()) == 2
    assert bot.state() == {**INITIAL, "count": 2}


def test_an_integer_past_int64_is_refused_in_the_bots_own_handler_on_every_driver(bot, probe):
    """One rule for every store: MongoDB would refuse it only after the reply was sent."""
    bot.ask('set {"count": 1}')

    # The bot's handler catches the refusal of set_state and still replies, once.
    assert bot.ask("bad int64") == {**INITIAL, "count": 1}
    assert probe.errors == [
        "TypeError: set_state: the integer 9223372036854775808 at ['value']['visits'][1]"
        " does not fit in signed 64 bits (state integers must: MongoDB keeps no larger ones)"
    ]
    assert len(bot.replies()) == 2
    assert bot.state() == {**INITIAL, "count": 1}
