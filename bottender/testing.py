"""Test a bot without HTTP or a platform: ``from bottender.testing import BotTester``.

Also a pytest plugin (registered by the package's ``pytest11`` entry point): a
failing test that used a BotTester gets its conversations in the report.
"""

from bottender.server.testing import (
    BotError,
    BotTester,
    Replies,
    Reply,
    pytest_runtest_makereport,
    pytest_runtest_setup,
)

__all__ = [
    "BotError",
    "BotTester",
    "Replies",
    "Reply",
    "pytest_runtest_makereport",
    "pytest_runtest_setup",
]
