"""The calls a channel's operator makes on its platform, outside any event.

``bottender <platform> webhook <action>`` and ``bottender dev`` drive them; the
server only finds a channel's :class:`ChannelAdmin` through its connector class
and never knows what an action does on the platform. Each action answers with
lines for a person, in words, and raises
:class:`~bottender.connectors.api.PlatformApiError` with the platform's own
reason when refused.
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp


class ChannelAdmin:
    """One channel's operator calls; subclasses add their actions."""

    #: ``bottender <platform> webhook <action>``: action name -> its help line.
    actions: ClassVar[Mapping[str, str]] = {}
    #: Actions that take ``--webhook URL``, defaulting to the running tunnel + the channel's path.
    url_actions: ClassVar[frozenset[str]] = frozenset({"set"})

    def __init__(self, http: aiohttp.ClientSession, name: str, settings: Mapping[str, Any]) -> None:
        self.http = http
        self.name = name
        self.settings = settings

    @classmethod
    def add_arguments(cls, action: str, parser: argparse.ArgumentParser) -> None:
        """Add the options of ``action`` besides ``--webhook``, ``--channel`` and ``--config``."""

    async def run(
        self, action: str, args: argparse.Namespace, url: str | None
    ) -> tuple[bool, list[str]]:
        """Run one webhook action; ``(success, lines to print)``."""
        raise NotImplementedError(action)

    async def register(self, url: str) -> list[str]:
        """Point the platform at ``url`` (``bottender dev``); the lines worth printing."""
        raise NotImplementedError

    async def unregister_for_polling(self) -> list[str]:
        """Stop webhook delivery so updates can be long-polled (platforms that can poll)."""
        return []


def when(timestamp: Any) -> str:
    """A Unix time as a readable UTC moment, ``-`` when absent."""
    if not isinstance(timestamp, int | float) or not timestamp:
        return "-"
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
