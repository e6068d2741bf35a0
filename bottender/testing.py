"""Test a bot without HTTP or a platform: ``from bottender.testing import BotTester``."""

from bottender.server.testing import BotError, BotTester, Replies, Reply

__all__ = ["BotError", "BotTester", "Replies", "Reply"]
