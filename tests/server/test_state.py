"""Bottender's state semantics, through the live gateway and the real store.

``context.state`` is read-only; ``set_state`` merges shallowly; ``reset_state``
goes back to ``initial_state``; only what those two do is ever saved.
"""

from __future__ import annotations

import copy
import logging

import pytest

from bottender.connectors.base import StateWarning
from tests.server.updates import poll_update

INITIAL = {"count": 0, "profile": {"name": "ann", "lang": "en"}, "tags": ["a"]}


@pytest.fixture
def bot(telegram_bot):
    return telegram_bot("tests.bots:state_probe", initial_state=copy.deepcopy(INITIAL))


def test_a_new_session_reads_initial_state(bot, probe):
    assert bot.state() is None
    assert bot.ask("show") == INITIAL
    assert probe.seen == [("telegram:7", INITIAL)]
    assert bot.state() == INITIAL


def test_context_session_has_no_way_into_the_state_but_set_state(bot, probe):
    # The bot tries every way into its (brand new) session's state but set_state...
    bot.say("mutate-session", chat_id=7)
    # ...assigning raises TypeError, replacing the state AttributeError...
    assert [error.split(":")[0] for error in probe.errors] == ["TypeError", "AttributeError"]
    # ...and nothing of it was saved, nor leaked into the next conversation's start.
    assert bot.state(7) == INITIAL
    assert bot.session(7).user["id"] == 7
    assert bot.ask("show", chat_id=8) == INITIAL
    assert bot.live.config.initial_state == INITIAL


def test_set_state_merges_shallowly(bot):
    merged = {"count": 0, "profile": {"name": "bob"}, "tags": ["a"]}
    # The reply is the state read right after set_state: the change is visible at once.
    assert bot.ask('set {"profile": {"name": "bob"}}') == merged
    assert bot.state() == merged  # the nested dict was replaced, not merged: "lang" is gone
    assert bot.ask('set {"count": 5, "mood": "happy"}') == {**merged, "count": 5, "mood": "happy"}
    assert bot.state() == {**merged, "count": 5, "mood": "happy"}


def test_reset_state_returns_to_initial_state(bot):
    bot.ask('set {"count": 3, "extra": true, "profile": {}}')
    assert bot.ask("reset") == INITIAL
    assert bot.state() == INITIAL  # keys set since are gone, replaced ones are back


def test_assigning_to_state_raises_type_error_and_changes_nothing(bot, probe):
    assert bot.ask("assign") == INITIAL
    assert len(probe.errors) == 2  # both item assignment and deletion
    assert all(error.startswith("TypeError") for error in probe.errors)
    assert bot.state() == INITIAL


def test_mutating_state_in_place_is_never_saved(bot):
    bot.say("mutate")
    assert bot.state() == INITIAL
    assert bot.ask("show") == INITIAL
    # Nor smuggled into the store by a set_state of another key in the same event.
    bot.say('mutate {"count": 1}')
    assert bot.state() == {**INITIAL, "count": 1}
    assert bot.ask("show") == {**INITIAL, "count": 1}


@pytest.mark.parametrize(
    "change", [lambda c: c.set_state({"count": 99}), lambda c: c.reset_state()]
)
def test_changing_state_after_the_session_was_written_warns_and_is_not_saved(bot, probe, change):
    bot.ask('set {"count": 1}')
    assert bot.ask("stash") == {**INITIAL, "count": 1}
    (context,) = probe.contexts
    with pytest.warns(StateWarning, match="telegram:7"):
        change(context)
    assert bot.state() == {**INITIAL, "count": 1}
    assert bot.ask("show") == {**INITIAL, "count": 1}


def test_set_state_of_a_non_json_value_raises_type_error(bot, probe):
    bot.ask('set {"count": 2}')
    values = ["datetime", "date", "set", "bytes", "object", "int-key", "nul-key"]
    for value in values:
        assert bot.ask(f"bad {value}") == {**INITIAL, "count": 2}, value
    assert len(probe.errors) == len(values)
    assert all(e.startswith("TypeError") for e in probe.errors), probe.errors
    assert all("JSON" in e or "NUL" in e for e in probe.errors), probe.errors
    assert bot.state() == {**INITIAL, "count": 2}


def test_a_sessionless_event_runs_the_app_with_empty_state_and_set_state_warns(bot, probe):
    reply = bot.post(poll_update(41))
    assert reply.status == 200
    # The app ran, read an empty state, and neither set_state nor reset_state made one.
    assert probe.seen == [(None, {}), (None, {})]
    assert [category for category, _ in probe.warnings] == [StateWarning, StateWarning]
    assert all("no session" in message for _, message in probe.warnings)
    assert bot.sessions() == []
    assert bot.replies() == []


def test_a_stored_session_gets_the_initial_state_keys_it_lacks_when_read(bot, probe):
    """A key added to initial_state after the conversation began reads as its initial value."""
    from bottender.sessions.session import Session

    old = Session("telegram:7", {"count": 4, "profile": {"name": "old"}})
    bot.live.run(bot.live.gateway.store.write(old))
    # count and profile are kept as stored (not merged); tags, new since, is filled in.
    expected = {"count": 4, "profile": {"name": "old"}, "tags": ["a"]}
    assert bot.ask("show") == expected
    assert bot.state() == expected
    bot.say("mutate")  # the filled-in value is a copy: initial_state stays as configured
    assert bot.live.config.initial_state == INITIAL


def test_the_readme_counter_ignores_an_update_of_no_conversation(telegram_bot, caplog):
    """examples/counter.py, the README's first bot: a Telegram poll update must not raise."""
    caplog.set_level(logging.WARNING)
    counter = telegram_bot("examples.counter:app", initial_state={"count": 0})
    assert counter.post(poll_update(1)).status == 200  # a poll: no chat, no session
    assert counter.say("hi") == ["Count: 1"]
    assert counter.say("hi") == ["Count: 2"]
    assert [r.getMessage() for r in caplog.records if "bot raised" in r.getMessage()] == []
