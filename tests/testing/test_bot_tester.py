"""BotTester runs the real gateway in-process: what users send, what the bot answers, its state."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bottender.testing import BotError, BotTester
from tests.testing.bots import sends


async def test_the_counter_counts_per_conversation_on_both_platforms():
    async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
        ada, bob = bot.telegram_user(42), bot.line_user("U1")
        assert await ada.says("hi") == ["Count: 1"]
        await ada.says("again")
        await bob.says("hello")
        assert ada.replies == ["Count: 1", "Count: 2"]
        assert [r.text for r in bob.replies] == ["Count: 1"]
        assert bot.state(ada) == {"count": 2}
        assert bot.state(bob) == {"count": 1}
        assert bot.state(bot.telegram_user(7)) == {"count": 0}  # before any event


async def test_a_line_bot_sending_seven_messages_shows_seven_replies_in_order():
    async with BotTester("tests.testing.bots:seven") as bot:
        user = bot.line_user("U1")
        await user.says("go")
        assert [r.text for r in user.replies] == [f"message {n}" for n in range(1, 8)]
        assert {r.kind for r in user.replies} == {"text"}
        paths = [call.path for call in sends(bot)]
        assert paths == ["/v2/bot/message/reply", "/v2/bot/message/push"]
        assert sends(bot)[1].body["to"] == "U1"


async def test_replies_clear_and_return_only_the_new_ones():
    async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
        user = bot.telegram_user(42)
        await user.says("one")
        user.replies.clear()
        new = await user.says("two")
        assert new == ["Count: 2"]
        assert user.replies == ["Count: 2"]


async def test_webhook_bodies_are_shaped_as_line_sends_them():
    async with BotTester("tests.testing.bots:describe") as bot:
        user = bot.line_user("U1")
        await user.says("hi")
        await user.taps("BUY:1")
        await user.sends_image()
        await user.sends_location(35.0, 139.0)
        await user.sends_sticker()
        await user.follows()
        seen = [json.loads(r.text) for r in user.replies]
        assert [(s["type"], s["message"], s["postback"]) for s in seen] == [
            ("message", "text", None),
            ("postback", None, "BUY:1"),
            ("message", "image", None),
            ("message", "location", None),
            ("message", "sticker", None),
            ("follow", None, None),
        ]
        assert {s["session"] for s in seen} == {"line:U1"}
        group = bot.line_group("C9", user="U2")
        (reply,) = await group.says("hi all")
        seen = json.loads(reply.text)
        assert seen["source"] == {"type": "group", "groupId": "C9", "userId": "U2"}
        assert seen["session"] == "line:C9"
        assert group.replies == [reply] and user.replies[-1] != reply


async def test_updates_are_shaped_as_telegram_sends_them():
    async with BotTester("tests.testing.bots:describe") as bot:
        user = bot.telegram_user(42)
        await user.says("hi")
        await user.sends_command("start", "ref42")
        await user.taps("BUY:1")
        await user.sends_image()
        await user.sends_location(35.0, 139.0)
        await user.sends_sticker()
        seen = [json.loads(r.text) for r in user.replies]
        assert [s["kind"] for s in seen] == ["message"] + ["message", "callback_query"] + [
            "message"
        ] * 3
        assert seen[1]["text"] == "/start ref42"
        assert seen[1]["entities"] == [{"length": 6, "offset": 0, "type": "bot_command"}]
        assert seen[2]["data"] == "BUY:1"
        # The button was on the last message the bot sent to the chat.
        assert seen[2]["text"] == user.replies[1].text
        assert [s["fields"] for s in seen[3:]] == [["photo"], ["location"], ["sticker"]]
        group = bot.telegram_group(-100123, user=42)
        (reply,) = await group.says("hi all")
        assert json.loads(reply.text)["session"] == "telegram:-100123"
        assert sends(bot)[-1].body["chat_id"] == -100123


async def test_reply_kinds_texts_and_raw_bodies():
    async with BotTester("tests.testing.bots:media") as bot:
        telegram, line = bot.telegram_user(42), bot.line_user("U1")
        await telegram.says("pics")
        await line.says("pics")
        # sendChatAction is a typing indicator, not a message: in bot.calls, not in replies.
        assert [(r.kind, r.text) for r in telegram.replies] == [("photo", "a picture")]
        assert telegram.replies[0].raw["photo"] == "https://x.test/a.png"
        assert [c.path.rsplit("/", 1)[-1] for c in sends(bot)[:2]] == [
            "sendChatAction",
            "sendPhoto",
        ]
        assert [(r.kind, r.text) for r in line.replies] == [("image", None), ("sticker", None)]
        assert line.replies[1].raw == {"type": "sticker", "packageId": "446", "stickerId": "1988"}


async def test_a_bot_that_raises_fails_the_action_with_its_error_and_the_conversation():
    async with BotTester("tests.testing.bots:explosive", initial_state={"count": 0}) as bot:
        user = bot.telegram_user(42)
        await user.says("hi")
        with pytest.raises(BotError) as failure:
            await user.says("boom")
        message = str(failure.value)
        assert "RuntimeError: the bot blew up" in message
        assert "42 > hi\nbot: Count: 1\n42 > boom" in message
        assert isinstance(failure.value.__cause__, RuntimeError)
        assert bot.state(user) == {"count": 1}  # the session is left as it was


async def test_with_raise_errors_off_the_error_is_kept_for_the_test():
    async with BotTester(
        "tests.testing.bots:explosive", initial_state={"count": 0}, raise_errors=False
    ) as bot:
        user = bot.line_user("U1")
        assert await user.says("boom") == []
        assert [str(e) for e in bot.errors] == ["the bot blew up"]
        assert await user.says("hi") == ["Count: 1"]


async def test_expect_replies_fails_with_the_conversation_so_far():
    async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
        user = bot.line_user("U1")
        await user.says("hi")
        user.expect_replies("Count: 1")
        with pytest.raises(AssertionError) as failure:
            user.expect_replies("Count: 2")
        assert "expected replies ['Count: 2'], got ['Count: 1']" in str(failure.value)
        assert "U1 > hi\nbot: Count: 1" in str(failure.value)
        assert "conversation so far" in repr(user.replies)


async def test_webhooks_are_really_verified():
    """The tester signs each body with the channel's secret; the gateway checks it."""
    async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
        bot._line.secret = "not-the-channel-secret"
        bot._telegram.secret_token = "not-the-secret-token"
        with pytest.raises(BotError, match="401"):
            await bot.line_user("U1").says("hi")
        with pytest.raises(BotError, match="401"):
            await bot.telegram_user(42).says("hi")
        assert sends(bot) == []


@pytest.mark.parametrize("driver", ["file", "redis"])
async def test_any_session_driver(driver, tmp_path, request):
    stores = {"file": {"dirname": str(tmp_path / "s")}}
    if driver == "redis":
        stores["redis"] = {
            "url": request.getfixturevalue("redis_server"),
            "prefix": f"{tmp_path.name}:",
        }
    options = {"initial_state": {"count": 0}, "driver": driver, "session": {"stores": stores}}
    async with BotTester("examples.counter:app", **options) as bot:
        await bot.telegram_user(42).says("hi")
    async with BotTester("examples.counter:app", **options) as bot:
        user = bot.telegram_user(42)
        assert await user.says("hi") == ["Count: 2"]  # the first tester's session was stored
        assert await bot.read_state(user) == {"count": 2}


async def test_from_config_uses_the_config_file(tmp_path):
    config = tmp_path / "bottender_config.py"
    config.write_text(
        'app = "examples.counter:app"\n'
        'initial_state = {"count": 10}\n'
        'channels = {"line": {"enabled": False, "path": "/hooks/line"}}\n'
    )
    async with BotTester.from_config(config) as bot:
        user = bot.line_user("U1")
        assert await user.says("hi") == ["Count: 11"]
        assert bot.config.channels["line"]["path"] == "/hooks/line"


def test_works_without_pytest_asyncio_under_asyncio_run_and_anyio():
    import asyncio

    import anyio

    async def conversation() -> list[str | None]:
        async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
            user = bot.telegram_user(42)
            await user.says("a")
            await user.says("b")
            return user.replies.texts

    assert asyncio.run(conversation()) == ["Count: 1", "Count: 2"]
    assert anyio.run(conversation) == ["Count: 1", "Count: 2"]


async def test_from_config_defaults_to_the_projects_own_config(monkeypatch):
    from tests.server.conftest import PROJECT_ENV, ROOT

    for name in PROJECT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(ROOT)
    async with BotTester.from_config() as bot:  # ./bottender_config.py: the counter, no tokens
        assert bot.config.path == ROOT / "bottender_config.py"
        assert await bot.line_user("U1").says("hi") == ["Count: 1"]
        assert await bot.telegram_user(42).says("hi") == ["Count: 1"]


def test_the_file_driver_without_a_directory_gets_a_temporary_one(tmp_path, monkeypatch):
    import asyncio

    monkeypatch.chdir(tmp_path)

    async def talk() -> tuple[str, list]:
        options = {"initial_state": {"count": 0}, "driver": "file"}
        async with BotTester("examples.counter:app", **options) as bot:
            replies = await bot.line_user("U1").says("hi")
            return str(bot.gateway.store.dirname), replies

    directory, replies = asyncio.run(talk())
    assert replies == ["Count: 1"]
    assert Path(directory).parent != tmp_path
    assert not os.path.exists(directory)
    assert os.listdir(tmp_path) == []  # no .session left in the working directory
