"""The console's made-up LINE and Telegram events pass through the real connectors unchanged."""

from __future__ import annotations

import pytest

from bottender.connectors.line import LineConnector
from bottender.connectors.line_simulated import USER_ID
from bottender.connectors.line_simulated import simulated_event as line_event
from bottender.connectors.telegram import TelegramConnector
from bottender.connectors.telegram_simulated import simulated_event as telegram_event

CASES = [("text", "hi"), ("payload", "BUY:1"), ("image", None), ("location", (25.03, 121.56))]


@pytest.mark.parametrize(("kind", "value"), CASES)
def test_line_events_parse_as_line_sends_them(kind, value):
    made = line_event(kind, value)
    connector = LineConnector(
        path="/webhooks/line", initial_state={}, access_token="t", channel_secret="s"
    )
    [parsed] = connector.parse({"destination": "Ubot", "events": [made.raw]})
    assert parsed.raw == made.raw
    assert connector.session_key(parsed) == f"line:{USER_ID}"
    assert parsed.delivery_id and parsed.delivery_id != line_event(kind, value).delivery_id
    assert parsed.text == (value if kind == "text" else None)
    assert parsed.postback_data == (value if kind == "payload" else None)


@pytest.mark.parametrize(("kind", "value"), CASES)
def test_telegram_updates_parse_as_telegram_sends_them(kind, value):
    made = telegram_event(kind, value)
    connector = TelegramConnector(path="/webhooks/telegram", initial_state={}, access_token="t")
    [parsed] = connector.parse(made.raw)
    assert parsed.kind == ("callback_query" if kind == "payload" else "message")
    assert connector.session_key(parsed) == "telegram:1"
    assert parsed.text == (value if kind == "text" else None)
    assert parsed.callback_data == (value if kind == "payload" else None)
    assert telegram_event(kind, value).raw["update_id"] > made.raw["update_id"]


def test_a_telegram_command_carries_its_bot_command_entity():
    message = telegram_event("text", "/start ref42").raw["message"]
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert "entities" not in telegram_event("text", "hi").raw["message"]


@pytest.mark.parametrize("make", [line_event, telegram_event])
def test_an_unknown_kind_is_refused(make):
    with pytest.raises(ValueError, match="unknown kind 'sticker'"):
        make("sticker")
