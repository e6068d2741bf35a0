"""examples/menu.py (the café menu: router, buttons, taps, error handler), tested with BotTester."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if not (ROOT / "examples" / "menu.py").exists():  # pragma: no cover - lands with the router
    pytest.skip("examples/menu.py has not landed yet", allow_module_level=True)

from bottender.testing import BotTester  # noqa: E402
from tests.testing.bots import sends  # noqa: E402

APP = "examples.menu:app"
OPTIONS = {"error_handler": "examples.menu:on_error", "initial_state": {"orders": []}}


def method(call) -> str:
    return call.path.rsplit("/", 1)[-1]


async def test_telegram_menu_taps_edit_the_menu_and_keep_the_order():
    async with BotTester(APP, **OPTIONS) as bot:
        user = bot.telegram_user(42)
        (menu,) = await user.says("menu")
        assert menu.text == "What would you like? Nothing ordered yet."
        keyboard = menu.raw["reply_markup"]["inline_keyboard"]
        assert [b["callback_data"] for b in keyboard[0]] == ["ORDER:1", "ORDER:2", "ORDER:3"]

        assert await user.taps("ORDER:1") == []  # answered and edited, nothing new sent
        assert [method(c) for c in sends(bot)[-2:]] == ["answerCallbackQuery", "editMessageText"]
        assert sends(bot)[-2].body["text"] == "Coffee added"
        assert sends(bot)[-1].body["text"] == "What else? Your order: Coffee."
        await user.taps("ORDER:3")
        assert bot.state(user)["orders"] == ["Coffee", "Cake"]
        await user.taps("CLEAR")
        assert bot.state(user)["orders"] == []


async def test_line_menu_is_a_buttons_template_and_a_postback_orders():
    async with BotTester(APP, **OPTIONS) as bot:
        user = bot.line_user("U1")
        await user.says("hi")
        assert [r.kind for r in user.replies] == ["template", "text"]
        assert user.replies[0].raw["template"]["type"] == "buttons"
        assert user.replies[1].raw["quickReply"]["items"][0]["action"]["text"] == "picture"
        user.replies.clear()
        assert await user.taps("ORDER:2") == ["Tea added. Your order: Tea."]
        (image,) = await user.says("picture")
        assert image.kind == "image"
        assert image.raw["originalContentUrl"] == "https://example.com/static/cakes.jpg"


async def test_greetings_pictures_and_the_fallback():
    async with BotTester(APP, **OPTIONS) as bot:
        telegram, line = bot.telegram_user(7), bot.line_user("U2")
        replies = await telegram.sends_command("start", "ref42")
        assert replies.texts[0] == "Welcome from ref42!"
        assert replies.texts[1].startswith("What would you like?")
        assert (await line.follows()).texts[0] == "Thanks for adding the café!"
        assert await telegram.sends_image() == ["What a nice picture! Say 'menu' to order."]
        assert await telegram.says("what?") == ["Say 'menu' to see the menu."]
        assert await line.says("what?") == ["Tap Menu to order."]


async def test_the_error_handler_answers_and_the_state_stays():
    async with BotTester.from_config(ROOT / "examples" / "menu_config.py") as bot:
        user = bot.telegram_user(42)
        await user.says("menu")
        await user.taps("ORDER:1")
        replies = await user.says("boom")
        assert replies == ["Sorry, something went wrong. Please try again."]
        assert bot.state(user)["orders"] == ["Coffee"]
