# ruff: noqa: F811 - line_bot is a fixture imported from tests.server.line_bot
"""``error_handler`` and ``middleware`` of the config, through the real gateway.

Webhooks go over HTTP to the gateway, whose connectors call the fake platform API.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

import tests.fixtures.gateway as gateway_fixtures
from bottender.server.config import ConfigError, load_config
from tests.fixtures.gateway import write_config
from tests.server.hook_bots import SEEN
from tests.server.line_bot import line_bot  # noqa: F401 - a fixture
from tests.server.test_runtime import FlakyStore
from tests.server.updates import text_update


@pytest.fixture(autouse=True)
def seen() -> Iterator[list[Any]]:
    SEEN.clear()
    yield SEEN
    SEEN.clear()


# ------------------------------------------------------------------------- error_handler


def test_the_error_handler_runs_with_the_same_context_and_its_sends_are_sent(telegram_bot, seen):
    bot = telegram_bot(
        "tests.server.hook_bots:crash", error_handler="tests.server.hook_bots:on_error"
    )
    assert bot.say("hi") == ["before the crash", "Sorry! (ValueError)"]
    # The handler saw the failing action's context (its set_state included)...
    assert seen == ["app", ("error_handler", "ValueError", 99)]
    # ...but the session is left as it was before the event.
    assert bot.state() is None
    assert bot.say("again") == ["before the crash", "Sorry! (ValueError)"]
    assert bot.state() is None


def test_on_line_the_failing_actions_buffered_messages_are_dropped(line_bot, seen):
    bot = line_bot(
        "tests.server.hook_bots:crash",
        error_handler="tests.server.hook_bots:on_error",
        initial_state={"count": 0},
    )
    assert bot.say("hi") == 200
    assert bot.replies() == [["Sorry! (ValueError)"]]  # "before the crash" is not sent
    assert bot.state() is None


def test_an_error_handler_that_raises_is_logged_and_sends_nothing_on_line(line_bot, seen, caplog):
    bot = line_bot(
        "tests.server.hook_bots:crash", error_handler="tests.server.hook_bots:broken_handler"
    )
    with caplog.at_level(logging.ERROR):
        assert bot.say("hi") == 200
    assert seen == ["app", ("error_handler", "ValueError")]
    assert bot.replies() == []
    messages = [record.getMessage() for record in caplog.records]
    assert any(message.startswith("bot raised") for message in messages)
    assert any(message.startswith("error_handler raised") for message in messages)


def test_without_an_error_handler_a_crash_is_logged_and_answered_200(telegram_bot, caplog):
    bot = telegram_bot("tests.server.hook_bots:crash")
    with caplog.at_level(logging.ERROR):
        assert bot.say("hi") == ["before the crash"]
    assert any("bot raised" in record.getMessage() for record in caplog.records)
    assert bot.state() is None


def test_a_platform_refusing_the_line_replies_is_reported_as_such(
    line_bot, fake_platform, seen, caplog
):
    refusal = {"message": "The request body has 1 error(s)", "details": [{"property": "x"}]}
    fake_platform.answer("/v2/bot/message/reply", (400, refusal))
    bot = line_bot(
        "tests.server.hook_bots:counter",
        error_handler="tests.server.hook_bots:on_error",
        initial_state={"count": 0},
    )
    with caplog.at_level(logging.ERROR):
        assert bot.say("hi") == 200
    messages = [record.getMessage() for record in caplog.records]
    assert not any("bot raised" in message for message in messages), messages
    flush_lines = [m for m in messages if m.startswith("sending the bot's buffered line messages")]
    assert flush_lines and "The request body has 1 error(s)" in flush_lines[0]
    # The error handler heard of it; its own reply was refused as well, and said so.
    assert seen == ["app", ("error_handler", "LineApiError", 1)]
    assert any(m.startswith("sending the error_handler's buffered line") for m in messages)
    assert bot.state() is None  # the replies were never delivered: the event did not happen


def test_a_store_error_is_still_a_503_with_an_error_handler(telegram_bot, monkeypatch, seen):
    store = FlakyStore()
    real_create_app = gateway_fixtures.create_app
    monkeypatch.setattr(
        gateway_fixtures,
        "create_app",
        lambda config, **options: real_create_app(config, store=store, **options),
    )
    bot = telegram_bot(
        "tests.server.hook_bots:counter", error_handler="tests.server.hook_bots:on_error"
    )
    store.failing = {"write"}
    update = text_update(1, "hi")
    assert bot.post(update).status == 503
    assert "error_handler" not in {entry[0] for entry in seen if isinstance(entry, tuple)}
    store.failing = set()
    assert bot.post(update).status == 200
    assert bot.state() == {"count": 1}


# ----------------------------------------------------------------------------- middleware


def test_middleware_wraps_the_action_chain_outermost_first(telegram_bot, seen):
    bot = telegram_bot(
        "tests.server.hook_bots:counter",
        middleware=["tests.server.hook_bots:outer", "tests.server.hook_bots:inner"],
    )
    assert bot.say("hi") == ["Count: 1"]
    assert seen == ["outer in", "inner in", "app", "inner out", "outer out"]
    assert bot.state() == {"count": 1}


def test_middleware_that_does_not_call_next_stops_the_app(telegram_bot, seen):
    bot = telegram_bot("tests.server.hook_bots:counter", middleware=["tests.server.hook_bots:gate"])
    assert bot.say("blocked") == ["not allowed"]
    assert bot.say("hi") == ["Count: 1"]
    assert seen == ["gate closed", "app"]


def test_middleware_raising_goes_to_the_error_handler_and_saves_nothing(line_bot, seen):
    bot = line_bot(
        "tests.server.hook_bots:counter",
        middleware=["tests.server.hook_bots:failing_middleware"],
        error_handler="tests.server.hook_bots:on_error",
        initial_state={"count": 0},
    )
    assert bot.say("hi") == 200
    assert seen == ["app", ("error_handler", "LookupError", 1)]
    assert bot.replies() == [["Sorry! (LookupError)"]]
    assert bot.state() is None


def test_line_replies_of_a_middleware_wrapped_app_go_out_once(line_bot, seen):
    bot = line_bot(
        "tests.server.hook_bots:counter",
        middleware=["tests.server.hook_bots:outer"],
        initial_state={"count": 0},
    )
    assert bot.say("hi") == 200
    assert bot.say("hi") == 200
    assert bot.replies() == [["Count: 1"], ["Count: 2"]]
    assert bot.state() == {"count": 2}


# --------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("names", "says"),
    [
        ({"error_handler": "no_such_module_x:on_error"}, "error_handler: cannot import"),
        ({"error_handler": "tests.server.hook_bots:nothing"}, "error_handler: module"),
        ({"error_handler": "tests.server.hook_bots:not_async"}, "error_handler: "),
        ({"middleware": "tests.server.hook_bots:outer"}, "middleware must be a list"),
        ({"middleware": ["tests.server.hook_bots:outer", "nope"]}, "middleware[1] must be"),
        ({"middleware": ["tests.server.hook_bots:not_async"]}, "middleware[0]: "),
    ],
)
def test_a_bad_hook_is_one_line_naming_the_key(tmp_path, names, says):
    path = write_config(tmp_path, app="tests.server.hook_bots:counter", **names)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(says), message
    assert "\n" not in message


def test_the_app_may_be_an_object_with_an_async_call(telegram_bot):
    bot = telegram_bot("tests.server.hook_bots_objects:handler")
    assert bot.say("hi") == ["object call 1"]
    assert bot.say("hi") == ["object call 2"]


def test_the_app_may_be_a_router_whose_actions_chain(telegram_bot):
    bot = telegram_bot("tests.server.hook_bots_objects:routed")
    assert bot.say("hi") == ["hello"]
    assert bot.say("order 12") == ["order #12", "Count: 1"]  # order returns the counter
    assert bot.say("what") == ["?"]
    assert bot.state() == {"count": 1}
