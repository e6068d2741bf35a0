# ruff: noqa: F811 - line_bot is a fixture imported from tests.server.line_bot
"""examples/menu.py through the real gateway, on LINE and on Telegram, with its error handler.

Webhook bodies as the platforms document them go over HTTP to the gateway; the
fake platform API records what the bot sent.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.connectors import payloads
from tests.fixtures.schemas import assert_valid_calls
from tests.server.line_bot import line_bot  # noqa: F401 - a fixture


@pytest.fixture(autouse=True)
def calls_match_the_published_schemas(fake_platform):
    """Every call the example made is one line-bot-sdk v3 / aiogram models accept."""
    yield
    assert assert_valid_calls(fake_platform.calls) > 0


MENU = {"app": "examples.menu:app", "error_handler": "examples.menu:on_error"}


@pytest.fixture
def menu_line(line_bot):
    return line_bot(**MENU, initial_state={})


@pytest.fixture
def menu_telegram(telegram_bot):
    return telegram_bot(MENU["app"], error_handler=MENU["error_handler"], initial_state={})


def telegram_calls(bot: Any, method: str) -> list[dict[str, Any]]:
    return [call.json for call in bot.platform.calls_to(f"/bot123:TEST/{method}")]


def test_line_menu_is_a_buttons_template_and_quick_replies(menu_line):
    assert menu_line.say("menu") == 200
    ((template, hint),) = menu_line.reply_messages()
    assert template["type"] == "template" and template["template"]["type"] == "buttons"
    assert [action["data"] for action in template["template"]["actions"]] == [
        "ORDER:1",
        "ORDER:2",
        "ORDER:3",
    ]
    assert hint["type"] == "text"
    labels = [item["action"]["label"] for item in hint["quickReply"]["items"]]
    assert labels == ["Picture", "Start over"]


def test_line_postbacks_order_and_the_state_keeps_the_orders(menu_line):
    assert menu_line.post(payloads.postback_event("ORDER:1")) == 200
    assert menu_line.post(payloads.postback_event("ORDER:3")) == 200
    assert menu_line.replies() == [
        ["Coffee added. Your order: Coffee."],
        ["Cake added. Your order: Coffee, Cake."],
    ]
    assert menu_line.state() == {"orders": ["Coffee", "Cake"]}


def test_line_picture_follow_and_error_handler(menu_line):
    assert menu_line.say("picture") == 200
    ((image,),) = menu_line.reply_messages()
    assert image["type"] == "image" and image["originalContentUrl"].endswith("cakes.jpg")
    assert menu_line.post(payloads.follow_event()) == 200  # welcome, then (chained) the menu
    assert [m["type"] for m in menu_line.reply_messages()[1]] == ["text", "template", "text"]
    assert menu_line.post(payloads.postback_event("ORDER:2")) == 200
    assert menu_line.say("boom") == 200
    assert menu_line.replies()[-1] == ["Sorry, something went wrong. Please try again."]
    assert menu_line.state() == {"orders": ["Tea"]}


def test_telegram_start_with_a_deep_link_then_the_inline_keyboard(menu_telegram):
    menu_telegram.post(payloads.command_update("/start", "ref42"))
    welcome, menu = telegram_calls(menu_telegram, "sendMessage")
    assert welcome["text"] == "Welcome from ref42!"
    keyboard = menu["reply_markup"]["inline_keyboard"]
    assert [button["callback_data"] for button in keyboard[0]] == ["ORDER:1", "ORDER:2", "ORDER:3"]


def test_a_telegram_tap_answers_the_query_and_edits_the_menu_message(menu_telegram):
    tap = payloads.callback_update("ORDER:2")
    assert menu_telegram.post(tap).status == 200
    (answer,) = telegram_calls(menu_telegram, "answerCallbackQuery")
    assert answer["callback_query_id"] == tap["callback_query"]["id"]
    (edit,) = telegram_calls(menu_telegram, "editMessageText")
    menu_message = tap["callback_query"]["message"]
    assert edit["message_id"] == menu_message["message_id"]
    assert edit["chat_id"] == menu_message["chat"]["id"]
    assert edit["text"] == "What else? Your order: Tea."
    assert "inline_keyboard" in edit["reply_markup"]
    assert menu_telegram.state(payloads.ALICE["id"]) == {"orders": ["Tea"]}


def test_telegram_picture_and_a_picture_received(menu_telegram):
    assert menu_telegram.post(payloads.text_update("picture")).status == 200
    (photo,) = telegram_calls(menu_telegram, "sendPhoto")
    assert photo["photo"].endswith("cakes.jpg")
    received = payloads.media_update("photo", payloads.TELEGRAM_MEDIA["photo"])
    assert menu_telegram.post(received).status == 200
    assert menu_telegram.replies()[-1].startswith("What a nice picture!")
    assert menu_telegram.post(payloads.text_update("boom")).status == 200
    assert menu_telegram.replies()[-1] == "Sorry, something went wrong. Please try again."
