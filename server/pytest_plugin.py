"""The pytest plugin of the package (its ``pytest11`` entry point).

A failing test that used a ``BotTester`` gets a "bottender conversation"
section in its report: the conversations so far, whatever the assertion was.
It imports nothing of the gateway, so loading it costs a test run nothing and a
broken bot project cannot break pytest's start-up; it only looks at testers
that ``bottender.server.testing`` (imported by the tests themselves) recorded.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

TESTING = "bottender.server.testing"


def pytest_runtest_setup(item: Any) -> None:
    testing = sys.modules.get(TESTING)
    if testing is not None:
        testing.forget_recent()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    outcome = yield
    report = outcome.get_result()
    testing = sys.modules.get(TESTING)
    if testing is not None and report.when == "call" and report.failed:
        report.sections.extend(testing.report_sections())
