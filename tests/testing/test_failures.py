"""A test written with BotTester fails when the bot does not do what it expects,
and the failure shows the conversation: run as a bot author would, with pytest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BOT_TESTS = """
from bottender.testing import BotTester

async def test_wrong_expected_reply():
    async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
        user = bot.telegram_user(42)
        await user.says("hi")
        await user.says("again")
        assert [r.text for r in user.replies] == ["Count: 1", "Count: 3"]

async def test_wrong_expectation_on_replies():
    async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
        user = bot.line_user("U1")
        await user.says("hello")
        assert user.replies == ["Count: 9"]

async def test_bot_raises():
    async with BotTester("tests.testing.bots:explosive", initial_state={"count": 0}) as bot:
        await bot.line_user("U1").says("boom")

async def test_right_expectation():
    async with BotTester("examples.counter:app", initial_state={"count": 0}) as bot:
        user = bot.telegram_user(42)
        await user.says("hi")
        assert user.replies == ["Count: 1"]
"""


def run_pytest(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_my_bot.py").write_text(BOT_TESTS)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto",
         "--rootdir", str(tmp_path), str(tmp_path / "test_my_bot.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_wrong_expectations_fail_with_the_conversation_and_errors_show(tmp_path):
    result = run_pytest(tmp_path)
    output = result.stdout
    assert result.returncode == 1, output
    assert "3 failed, 1 passed" in output, output
    sections = output.split("_ test_")
    wrong = next(s for s in sections if s.startswith("wrong_expected_reply"))
    assert "bottender conversation" in wrong
    assert "telegram:42  42 > hi\ntelegram:42  bot: Count: 1" in wrong
    assert "telegram:42  bot: Count: 2" in wrong
    on_replies = next(s for s in sections if s.startswith("wrong_expectation_on_replies"))
    assert "At index 0 diff: 'Count: 1' != 'Count: 9'" in on_replies
    assert "line:U1  U1 > hello\nline:U1  bot: Count: 1" in on_replies
    raises = next(s for s in sections if s.startswith("bot_raises"))
    assert "BotError: the bot raised RuntimeError: the bot blew up" in raises
    assert "U1 > boom" in raises
