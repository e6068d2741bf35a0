"""examples/counter.py, tested the way the README shows: with BotTester."""

from __future__ import annotations

from bottender.testing import BotTester
from tests.testing.bots import sends

APP = "examples.counter:app"


async def test_it_counts_every_kind_of_message_on_telegram():
    async with BotTester(APP, initial_state={"count": 0}) as bot:
        user = bot.telegram_user(42)
        await user.says("hi")
        await user.sends_command("start")
        await user.sends_image()
        await user.sends_location(25.03, 121.56)
        await user.taps("BUY:1")
        assert user.replies == [f"Count: {n}" for n in range(1, 6)]
        assert bot.state(user) == {"count": 5}


async def test_it_counts_on_line_and_replies_with_the_reply_token():
    async with BotTester(APP, initial_state={"count": 0}) as bot:
        user = bot.line_user("U1")
        await user.follows()
        await user.says("hi")
        assert user.replies == ["Count: 1", "Count: 2"]
        assert {call.path for call in sends(bot)} == {"/v2/bot/message/reply"}


async def test_each_conversation_has_its_own_count():
    async with BotTester(APP, initial_state={"count": 0}) as bot:
        alone, group = bot.telegram_user(1), bot.telegram_group(-100, user=1)
        await alone.says("a")
        await group.says("b")
        await group.says("c")
        assert bot.state(alone) == {"count": 1}
        assert bot.state(group) == {"count": 2}


async def test_it_starts_from_the_configured_initial_state():
    async with BotTester(APP, initial_state={"count": 41}) as bot:
        assert await bot.line_user("U1").says("hi") == ["Count: 42"]


async def test_a_conversation_outside_a_webhook_changes_what_it_counts_next():
    async with BotTester(APP, initial_state={"count": 0}) as bot:
        user = bot.telegram_user(42)
        await user.says("hi")
        async with bot.conversation("telegram:42") as context:
            context.set_state({"count": 100})
        assert await user.says("hi") == ["Count: 101"]
