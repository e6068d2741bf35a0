"""LINE's operator calls: the webhook endpoint (set, get, test) and the bot's info."""

from __future__ import annotations

import argparse
from typing import Any, ClassVar

from bottender.connectors.admin import ChannelAdmin
from bottender.connectors.api import PlatformApiError
from bottender.connectors.line_api import DEFAULT_ORIGIN, LineClient


class LineAdmin(ChannelAdmin):
    actions: ClassVar[dict[str, str]] = {
        "set": "set the webhook endpoint",
        "get": "show the endpoint and whether it is active",
        "test": "have LINE send a test event",
    }

    @property
    def client(self) -> LineClient:
        origin = self.settings.get("origin") or DEFAULT_ORIGIN
        return LineClient(self.http, self.settings["access_token"], origin)

    @classmethod
    def add_arguments(cls, action: str, parser: argparse.ArgumentParser) -> None:
        if action == "test":
            parser.add_argument(
                "--webhook", metavar="URL", help="endpoint to test (default: the one set)"
            )

    async def run(
        self, action: str, args: argparse.Namespace, url: str | None
    ) -> tuple[bool, list[str]]:
        if action == "set":
            assert url is not None
            return True, await self.set(url)
        if action == "get":
            return True, await self.get()
        return await self.test(getattr(args, "webhook", None))

    async def register(self, url: str) -> list[str]:
        return await self.set(url)

    async def set(self, url: str) -> list[str]:
        """Set the endpoint; LINE only sends to it once "Use webhook" is on, so say if it is off."""
        client = self.client
        await client.set_webhook_endpoint(url)
        try:
            info: Any = await client.get_webhook_endpoint()
        except PlatformApiError:
            info = None
        lines = [f"LINE webhook set: {url}"]
        if isinstance(info, dict) and info.get("active") is False:
            lines.append(
                "Note: webhook use is off for this channel; turn on 'Use webhook' in the"
                " LINE Developers console (Messaging API tab) or LINE sends no events"
            )
        return lines

    async def get(self) -> list[str]:
        info: Any = await self.client.get_webhook_endpoint()
        info = info if isinstance(info, dict) else {}
        active = info.get("active")
        shown = "yes" if active else "no (turn on 'Use webhook')" if active is False else "-"
        return [f"LINE webhook: {info.get('endpoint') or 'none set'}", f"Active: {shown}"]

    async def test(self, url: str | None = None) -> tuple[bool, list[str]]:
        """Ask LINE to send a test event to the endpoint; ``(success, lines)``."""
        result: Any = await self.client.test_webhook(url)
        result = result if isinstance(result, dict) else {}
        success = result.get("success") is True
        lines = [
            f"LINE webhook test: {'success' if success else 'FAILED'}",
            f"Status code: {result.get('statusCode', '-')}",
            f"Reason: {result.get('reason', '-')}",
            f"Detail: {result.get('detail', '-')}",
        ]
        if result.get("timestamp"):
            lines.append(f"Timestamp: {result['timestamp']}")
        return success, lines
