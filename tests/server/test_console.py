"""``bottender start --console`` in a real terminal (a pseudo-terminal driven by pexpect)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import pexpect
import pytest

from bottender.connectors.console import SESSION_KEY
from bottender.sessions.file import FileStore
from bottender.sessions.session import Session
from tests.fixtures.gateway import write_config
from tests.server.conftest import PROJECT_ENV, ROOT
from tests.server.test_cli import bottender_argv

PROMPT = "You > "
TIMEOUT = 30  # generous: a loaded machine starts Python slowly


def spawn_console(directory, *options: str, **names: Any) -> pexpect.spawn:
    """``bottender start --console OPTIONS`` in a bot project directory, at its first prompt."""
    write_config(directory, app="examples.counter:app", initial_state={"count": 0}, **names)
    env = {k: v for k, v in os.environ.items() if k not in PROJECT_ENV}
    env.update(PYTHONPATH=str(ROOT), TERM="dumb")
    command, *args = bottender_argv()
    child = pexpect.spawn(
        command,
        [*args, "start", "--console", *options],
        cwd=str(directory),
        env=env,
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(24, 200),
    )
    child.expect_exact(PROMPT)
    return child


@pytest.fixture
def console(tmp_path):
    """The counting bot's console, in a bot project directory with its own config."""
    child = spawn_console(tmp_path)
    yield child
    if child.isalive():
        child.terminate(force=True)


def say(child: pexpect.spawn, line: str) -> str:
    """Type a line; the bot's answer (the text after "Bot > ") before the next prompt."""
    child.sendline(line)
    child.expect(r"Bot > (.*?)\r?\n")
    answer = child.match.group(1)
    child.expect_exact(PROMPT)
    return answer


def exit_status(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_the_counting_bot_counts_and_exit_ends_with_status_0(console):
    assert say(console, "hi") == "Count: 1"
    assert say(console, "hi") == "Count: 2"
    assert json.loads(say(console, "/state")) == {"count": 2}
    session = json.loads(say(console, "/session"))
    assert session["id"] == "console:1"
    assert session["state"] == {"count": 2}
    assert say(console, "hi") == "Count: 3"  # the built-ins were not messages to the bot
    console.sendline("/exit")
    assert exit_status(console) == 0


def test_state_before_any_message_is_the_initial_state(console):
    assert json.loads(say(console, "/state")) == {"count": 0}
    assert say(console, "hello") == "Count: 1"


def test_state_of_an_expired_conversation_is_what_the_next_message_starts_from(tmp_path):
    sessions = tmp_path / "sessions"

    async def an_hour_old_conversation() -> None:
        store = FileStore(str(sessions))
        await store.open()
        await store.write(Session(SESSION_KEY, {"count": 7}, last_activity=time.time() - 3600))
        await store.close()

    asyncio.run(an_hour_old_conversation())
    child = spawn_console(
        tmp_path,
        session={"driver": "file", "expires_in": 1, "stores": {"file": {"dirname": str(sessions)}}},
    )
    try:
        assert json.loads(say(child, "/state")) == {"count": 0}
        assert say(child, "hi") == "Count: 1"
    finally:
        child.terminate(force=True)


def test_quit_also_exits(console):
    assert say(console, "hi") == "Count: 1"
    console.sendline("/quit")
    assert exit_status(console) == 0


def test_end_of_input_exits_cleanly(console):
    assert say(console, "hi") == "Count: 1"
    console.sendeof()
    console.expect(pexpect.EOF)
    output = console.before
    console.close()
    assert console.exitstatus == 0
    assert "Traceback" not in output


def test_a_blank_line_is_ignored(console):
    console.sendline("")
    console.expect_exact(PROMPT)
    assert "Bot >" not in console.before
    assert say(console, "hi") == "Count: 1"


def test_ctrl_c_drops_the_line_being_typed_and_the_console_goes_on(tmp_path):
    child = spawn_console(tmp_path, "--app", "tests.server.console_bots:describe")
    try:
        child.send("half a thought")
        child.sendintr()
        child.expect_exact(PROMPT)  # a fresh prompt, not the end
        assert described(child, "hi")["text"] == "hi"  # the dropped words are gone
        child.send("second thought")
        child.sendintr()
        child.expect_exact(PROMPT)
        child.send("\x19")  # Ctrl-Y: readline's kill ring has it
        assert described(child, "")["text"] == "second thought"
        child.sendintr()
        child.expect_exact(PROMPT)
        child.sendeof()  # Ctrl-D quits
        assert exit_status(child) == 0
    finally:
        child.terminate(force=True)


def test_ctrl_c_while_the_bot_works_interrupts_that_event_only(tmp_path):
    child = spawn_console(tmp_path, "--app", "tests.server.console_bots:slow_worker")
    try:
        child.sendline("hi")
        child.expect_exact("Bot > working")  # the bot is inside its event now
        child.sendintr()
        child.expect_exact("(interrupted)")
        child.expect_exact(PROMPT)
        assert json.loads(say(child, "/state")) == {"count": 0}  # the event left no change
        child.sendeof()
        assert exit_status(child) == 0
    finally:
        child.terminate(force=True)


def described(child: pexpect.spawn, line: str) -> dict[str, Any]:
    """What ``console_bots.describe`` says it was handed for ``line``."""
    return json.loads(say(child, line))


def test_lines_can_be_edited_and_recalled(tmp_path):
    child = spawn_console(tmp_path, "--app", "tests.server.console_bots:describe")
    try:
        left = "\x1b[D"
        child.send("wrld" + left * 3 + "o")  # the Left arrow moves in the line
        assert described(child, "")["text"] == "world"
        up = "\x1b[A"
        child.send(up)  # the Up arrow recalls the last line
        assert described(child, "")["text"] == "world"
    finally:
        child.terminate(force=True)


@pytest.mark.parametrize(
    ("platform", "event", "postback"),
    [
        ("console", "ConsoleEvent", {"payload": "BUY:1"}),
        ("line", "LineEvent", {"type": "postback", "postback": {"data": "BUY:1"}}),
        ("telegram", "TelegramEvent", {"callback_query": {"data": "BUY:1"}}),
    ],
)
def test_payload_sends_a_postback_shaped_as_the_platform_sends_it(
    tmp_path, platform, event, postback
):
    child = spawn_console(
        tmp_path, "--app", "tests.server.console_bots:describe", "--platform", platform
    )
    try:
        seen = described(child, "/payload BUY:1")
        assert seen["platform"] == "console" and seen["event"] == event
        assert_contains(seen["raw"], postback)
        assert described(child, "hello")["text"] == "hello"
    finally:
        child.terminate(force=True)


def assert_contains(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every key of ``expected`` is in ``raw`` with that value (recursively for dicts)."""
    for key, value in expected.items():
        assert key in raw, (key, raw)
        if isinstance(value, dict):
            assert_contains(raw[key], value)
        else:
            assert raw[key] == value, (key, raw)


def test_line_shaped_events_are_what_line_sends(tmp_path):
    child = spawn_console(
        tmp_path, "--app", "tests.server.console_bots:describe", "--platform", "line"
    )
    try:
        text = described(child, "hi")["raw"]
        assert text["type"] == "message" and text["message"]["type"] == "text"
        assert text["source"]["type"] == "user" and text["source"]["userId"].startswith("U")
        assert text["replyToken"] and text["webhookEventId"]
        image = described(child, "/image")["raw"]
        assert image["message"]["type"] == "image"
        assert image["message"]["contentProvider"] == {"type": "line"}
        where = described(child, "/location 25.0330 121.5654")["raw"]["message"]
        assert where["type"] == "location"
        assert (where["latitude"], where["longitude"]) == (25.033, 121.5654)
    finally:
        child.terminate(force=True)


def test_telegram_shaped_updates_are_what_telegram_sends(tmp_path):
    child = spawn_console(
        tmp_path, "--app", "tests.server.console_bots:describe", "--platform", "telegram"
    )
    try:
        first = described(child, "/start ref42")["raw"]
        message = first["message"]
        assert message["text"] == "/start ref42"
        assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
        assert message["chat"]["type"] == "private" and message["from"]["is_bot"] is False
        photo = described(child, "/image")["raw"]
        assert photo["update_id"] > first["update_id"]  # each update its own id
        assert [size["width"] for size in photo["message"]["photo"]] == [90, 320, 800]
        where = described(child, "/location -33.8688 151.2093")["raw"]["message"]["location"]
        assert where == {"latitude": -33.8688, "longitude": 151.2093}
    finally:
        child.terminate(force=True)


def test_console_shaped_image_and_location(tmp_path):
    child = spawn_console(tmp_path, "--app", "tests.server.console_bots:describe")
    try:
        assert described(child, "/image")["raw"] == {"message": {"type": "image"}}
        assert described(child, "/location 1.5 2")["raw"] == {
            "message": {"type": "location", "latitude": 1.5, "longitude": 2.0}
        }
    finally:
        child.terminate(force=True)


@pytest.mark.parametrize("line", ["/location", "/location north 2", "/location 91 0", "/payload"])
def test_a_malformed_command_shows_its_usage_and_sends_nothing(console, line):
    console.sendline(line)
    console.expect_exact(PROMPT)
    assert "usage: /" in console.before and "Bot >" not in console.before
    assert json.loads(say(console, "/state")) == {"count": 0}


def test_platform_without_console_is_refused(tmp_path):
    write_config(tmp_path, app="examples.counter:app")
    command, *args = bottender_argv()
    env = {k: v for k, v in os.environ.items() if k not in PROJECT_ENV}
    env.update(PYTHONPATH=str(ROOT))
    output, status = pexpect.run(
        command,
        args=[*args, "start", "--platform", "line"],
        cwd=str(tmp_path),
        env=env,
        withexitstatus=True,
        encoding="utf-8",
        timeout=TIMEOUT,
    )
    assert status == 2
    assert "--platform shapes the console's events: add --console" in output


def test_a_bot_exception_is_shown_and_the_conversation_goes_on(tmp_path):
    child = spawn_console(tmp_path, "--app", "tests.bots:explosive")
    try:
        child.sendline("boom")
        child.expect_exact(PROMPT)
        assert "RuntimeError: the bot blew up" in child.before
        assert say(child, "/state") == '{"count": 0}'  # the failed event changed nothing
        assert say(child, "hi") == "Count: 1"
        child.sendline("/exit")
        assert exit_status(child) == 0
    finally:
        child.terminate(force=True)
