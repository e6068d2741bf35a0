"""A LINE channel on a live gateway (``make_gateway``), posted to with signed bodies."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tests.connectors import payloads
from tests.fixtures.gateway import LiveGateway
from tests.fixtures.platform_api import FakePlatform

LINE_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ALICE = payloads.line_id("U", "alice")
LINE_CHANNEL = {"enabled": True, "access_token": "line-token", "channel_secret": LINE_SECRET}


def http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class LineBot:
    def __init__(self, live: LiveGateway, platform: FakePlatform) -> None:
        self.live = live
        self.platform = platform

    def post(self, *events: dict[str, Any]) -> int:
        body = payloads.encode(payloads.line_body(*events))
        headers = {"X-Line-Signature": payloads.line_signature(body, LINE_SECRET)}
        return http_post(self.live.url + "/webhooks/line", body, headers)

    def say(self, text: str) -> int:
        return self.post(payloads.text_event(text))

    def reply_messages(self) -> list[list[dict[str, Any]]]:
        """The messages of each reply call, in order."""
        return [call.json["messages"] for call in self.platform.calls_to("/v2/bot/message/reply")]

    def replies(self) -> list[list[str]]:
        return [[m.get("text") for m in messages] for messages in self.reply_messages()]

    def state(self) -> dict[str, Any] | None:
        session = self.live.run(self.live.gateway.store.read(f"line:{ALICE}"))
        return None if session is None else session.state


@pytest.fixture
def line_bot(make_gateway, fake_platform) -> Callable[..., LineBot]:
    """``line_bot(app, **config_names)`` -> a :class:`LineBot` on a live gateway."""

    def start(app: str, **names: Any) -> LineBot:
        line = {**LINE_CHANNEL, "origin": fake_platform.origin}
        return LineBot(make_gateway(app=app, channels={"line": line}, **names), fake_platform)

    return start
