"""``session.expires_in``: minutes of inactivity after which a conversation starts over.

Time is a FakeClock handed to the gateway: the tests move it, nothing sleeps.
"""

from __future__ import annotations

import pytest

from tests.fixtures.gateway import FakeClock

INITIAL = {"count": 0, "topic": None}
SET = 'set {"count": 5, "topic": "pizza", "extra": true}'
CHANGED = {"count": 5, "topic": "pizza", "extra": True}


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def start(telegram_bot, clock):
    def start(**session):
        return telegram_bot(
            "tests.bots:state_probe", initial_state=INITIAL, session=session, clock=clock
        )

    return start


@pytest.mark.parametrize(
    ("expires_in", "inactive_for"),
    [(0.5, 30.5), (0.5, 3600), (15, 15 * 60 + 1), (0.01, 0.7)],
)
def test_a_session_inactive_for_longer_starts_over_from_initial_state(
    start, clock, expires_in, inactive_for
):
    bot = start(expires_in=expires_in)
    assert bot.ask(SET) == CHANGED
    clock.advance(inactive_for)
    assert bot.ask("show") == INITIAL  # every key set meanwhile is gone, too
    assert bot.state() == INITIAL


@pytest.mark.parametrize(
    ("expires_in", "inactive_for"), [(0.5, 29.5), (15, 15 * 60 - 1), (0.01, 0.5)]
)
def test_a_session_active_within_expires_in_is_kept(start, clock, expires_in, inactive_for):
    bot = start(expires_in=expires_in)
    bot.ask(SET)
    clock.advance(inactive_for)
    assert bot.ask("show") == CHANGED


def test_expiry_counts_from_the_last_activity_not_from_the_start(start, clock):
    bot = start(expires_in=0.5)
    bot.ask(SET)
    for _ in range(4):  # two minutes in all, never 30 s without a message
        clock.advance(29)
        assert bot.ask("show") == CHANGED
    assert bot.session().last_activity == clock.now
    clock.advance(31)
    assert bot.ask("show") == INITIAL


def test_expiry_of_one_conversation_leaves_the_others_alone(start, clock):
    bot = start(expires_in=0.5)
    bot.ask(SET, chat_id=1)
    clock.advance(20)
    bot.ask(SET, chat_id=2)
    clock.advance(20)  # chat 1 inactive for 40 s, chat 2 for 20 s
    assert bot.ask("show", chat_id=1) == INITIAL
    assert bot.ask("show", chat_id=2) == CHANGED


@pytest.mark.parametrize("session", [{}, {"expires_in": None}], ids=["absent", "None"])
def test_without_expires_in_a_session_never_expires(start, clock, session):
    bot = start(**session)
    bot.ask(SET)
    clock.advance(10 * 365 * 24 * 3600)
    assert bot.ask("show") == CHANGED
