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
TIMEOUT = 15


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


def test_ctrl_c_at_the_prompt_ends_the_console_at_once(console):
    assert say(console, "hi") == "Count: 1"
    console.sendintr()
    console.expect(pexpect.EOF, timeout=5)  # not left waiting for the terminal
    output = console.before
    console.close()
    assert console.exitstatus == 130  # the shell's convention for an interrupted command
    assert "Traceback" not in output


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
