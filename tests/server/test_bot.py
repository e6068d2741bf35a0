"""Bot: the store and clients outside a webhook; conversations locked and saved like events."""

from __future__ import annotations

import asyncio

import pytest

from bottender import Bot
from bottender.connectors.line_api import LineClient
from bottender.connectors.telegram_api import TelegramClient
from bottender.testing import BotTester
from tests.fixtures.gateway import write_config
from tests.testing.bots import sends


async def test_a_line_conversation_pushes_and_saves_the_state():
    async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
        user = bot.line_user("U1")
        await user.says("hi")
        async with bot.conversation("line:U1") as context:
            assert context.state == {"count": 1}
            context.set_state({"paid": True})
            await context.send_text("Payment received")
        assert user.replies == ["Count: 1", "Payment received"]
        push = sends(bot)[-1]
        assert push.path == "/v2/bot/message/push"
        assert push.body == {"to": "U1", "messages": [{"type": "text", "text": "Payment received"}]}
        assert bot.state(user) == {"count": 1, "paid": True}
        assert await user.says("hi") == ["Count: 2"]


async def test_a_conversation_that_raises_sends_nothing_buffered_and_saves_nothing():
    async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
        user = bot.line_user("U1")
        await user.says("hi")
        calls = len(sends(bot))
        with pytest.raises(RuntimeError, match="payment failed"):
            async with bot.conversation("line:U1") as context:
                context.set_state({"count": 100})
                await context.send_text("never sent")
                raise RuntimeError("payment failed")
        assert len(sends(bot)) == calls
        assert await bot.read_state(user) == {"count": 1}


async def test_a_telegram_conversation_sends_to_the_chat_of_the_session_id():
    async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
        group = bot.telegram_group(-100555, user=42)
        async with bot.conversation("telegram:-100555") as context:
            await context.send_text("Reminder: standup")
            context.set_state({"count": 41})
        (call,) = sends(bot)
        assert call.path.endswith("/sendMessage")
        assert call.body == {"chat_id": -100555, "text": "Reminder: standup"}
        assert group.replies == ["Reminder: standup"]
        assert await group.says("hi") == ["Count: 42"]


async def test_a_new_conversation_starts_from_initial_state_and_line_groups_push_to_the_group():
    async with BotTester("examples.counter:app", initial_state={"count": 5}) as bot:
        async with bot.conversation("line:C77") as context:
            assert context.state == {"count": 5}
            await context.send_text("hello group")
        assert sends(bot)[-1].body["to"] == "C77"
        assert bot.line_group("C77", user="U3").replies == ["hello group"]


async def test_clients_send_without_a_session():
    async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
        line, telegram = bot.client("line"), bot.client("telegram")
        assert isinstance(line, LineClient) and isinstance(telegram, TelegramClient)
        await line.push("U9", [{"type": "text", "text": "broadcast"}])
        me = await telegram.call("getMe")
        assert me["is_bot"] is True
        assert bot.line_user("U9").replies == ["broadcast"]
        with pytest.raises(LookupError, match="no enabled channel 'slack'"):
            bot.client("slack")


async def test_a_conversation_waits_for_an_event_of_its_session_and_the_other_way_round():
    """The conversation holds the session's lock: an event arriving meanwhile waits for it."""
    async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
        user = bot.telegram_user(42)
        async with bot.conversation("telegram:42") as context:
            event = asyncio.create_task(user.says("hi"))
            for _ in range(50):
                await asyncio.sleep(0)
            assert not event.done()
            context.set_state({"count": 10})
        assert await event == ["Count: 11"]


async def test_bot_from_config_sends_over_http_and_saves_in_the_configured_store(
    tmp_path, fake_platform
):
    config = write_config(
        tmp_path,
        initial_state={"count": 0},
        session={"driver": "file", "stores": {"file": {"dirname": str(tmp_path / "s")}}},
        channels={
            "line": {"enabled": True, "access_token": "T", "channel_secret": "S",
                     "origin": fake_platform.origin},
            "telegram": {"enabled": True, "access_token": "1:T", "origin": fake_platform.origin},
        },
    )  # fmt: skip
    bot = Bot.from_config(config)
    with pytest.raises(RuntimeError, match="not open"):
        async with bot.conversation("line:U1"):
            pass
    async with bot:
        async with bot.conversation("line:U1") as context:
            context.set_state({"paid": True})
            await context.send_text("Payment received")
        async with bot.conversation("telegram:42") as context:
            await context.send_text("hi there")
        session = await bot.store.read("line:U1")
    assert session.state == {"count": 0, "paid": True}
    (push,) = fake_platform.calls_to("/v2/bot/message/push")
    assert push.json == {"to": "U1", "messages": [{"type": "text", "text": "Payment received"}]}
    assert push.headers["Authorization"] == "Bearer T"
    assert fake_platform.calls_to("/reply") == []
    (send,) = fake_platform.calls_to("/bot1:T/sendMessage")
    assert send.json == {"chat_id": 42, "text": "hi there"}
