"""What BotTester posts is what the platforms post, and what the bot sends through it is what
the platforms accept: both checked against line-bot-sdk v3 and aiogram's published models."""

from __future__ import annotations

import json

from aiogram.types import Update
from linebot.v3.webhooks import CallbackRequest

from bottender.testing import BotTester
from tests.fixtures.platform_api import Recorded, Upload
from tests.fixtures.schemas import _covered, _no_extra, assert_valid_calls
from tests.testing.bots import sends


async def talk(bot: BotTester) -> None:
    for user in (bot.line_user("U1"), bot.line_group("C1", user="U2")):
        await user.says("hi")
        await user.taps("BUY:1", params={"date": "2026-12-02"})
        await user.sends_image()
        await user.sends_location(25.03, 121.56, title="Taipei 101", address="Xinyi")
        await user.sends_sticker()
        await user.follows()
    for user in (bot.telegram_user(42, username="ada"), bot.telegram_group(-100, user=42)):
        await user.says("hi")
        await user.sends_command("start", "ref42")
        await user.taps("BUY:1")
        await user.sends_image(caption="look")
        await user.sends_location(25.03, 121.56)
        await user.sends_sticker()


async def test_webhook_bodies_match_the_platforms_schemas():
    async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
        await talk(bot)
    line = [body for platform, body in bot.webhooks if platform == "line"]
    telegram = [body for platform, body in bot.webhooks if platform == "telegram"]
    assert (len(line), len(telegram)) == (12, 12)
    for body in line:
        sent = json.loads(body)
        # Every field we send is one LINE documents, with the value we sent.
        _covered(sent, CallbackRequest.from_dict(sent).to_dict(), "CallbackRequest")
    for body in telegram:
        _no_extra(Update.model_validate_json(body), "Update")


def recorded(call) -> Recorded:
    """A BotTester call in the form the schema checker reads (files as Upload parts)."""
    body = call.body
    if isinstance(body, dict) and any(isinstance(v, bytes) for v in body.values()):
        form = {
            k: Upload(k, "application/octet-stream", v) if isinstance(v, bytes)
            else json.dumps(v) if isinstance(v, dict | list) else str(v)
            for k, v in body.items()
        }  # fmt: skip
        return Recorded(call.method, call.path, call.headers, None, form)
    return Recorded(call.method, call.path, call.headers, body)


async def test_the_calls_bots_make_through_it_match_the_platforms_schemas():
    async with BotTester("tests.testing.test_rich_calls:rich") as bot:
        await bot.line_user("U1").sends_image()
        await bot.telegram_user(42).says("upload")
    async with BotTester("tests.testing.bots:seven") as seven:
        await seven.line_user("U1").says("go")
        await seven.telegram_user(42).says("go")
    count = assert_valid_calls(recorded(c) for c in [*bot.calls, *seven.calls])
    assert count >= len(sends(bot)) + len(sends(seven)) >= 6
