"""The observer the server hands the API clients: told of every request, ids left out."""

from __future__ import annotations

import aiohttp
import pytest

from bottender.connectors.api import PlatformUnreachable
from bottender.connectors.line_api import LineClient
from bottender.connectors.telegram_api import TelegramClient
from tests.fixtures.servers import free_port


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.open: list[str] = []

    def __call__(self, label: str):
        self.open.append(label)

        def ended(status: int) -> None:
            self.open.remove(label)
            self.seen.append((label, status))

        return ended


async def test_line_calls_are_labelled_by_kind_never_by_id(fake_platform) -> None:
    fake_platform.answer("/v2/bot/message/42/content", (200, b"jpeg bytes"))
    fake_platform.answer("/v2/bot/message/push", (429, {"message": "slow down"}), (200, {}))
    recorder = Recorder()
    async with aiohttp.ClientSession() as http:
        client = LineClient(
            http, "T", fake_platform.origin, observe=recorder, sleep=lambda s: _no_wait()
        )
        await client.get_profile("U0123456789abcdef0123456789abcdef", group_id="C0123abc")
        await client.push("U0123456789abcdef0123456789abcdef", [{"type": "text", "text": "x"}])
        assert await client.get_message_content("42") == b"jpeg bytes"
    assert recorder.seen == [
        ("GET /v2/bot/group/{id}/member/{id}", 200),
        ("POST /v2/bot/message/push", 429),  # each attempt is a request
        ("POST /v2/bot/message/push", 200),
        ("GET /v2/bot/message/{id}/content", 200),
    ]
    assert recorder.open == []


async def test_an_unreachable_platform_is_status_0(fake_platform) -> None:
    recorder = Recorder()
    async with aiohttp.ClientSession() as http:
        client = TelegramClient(http, "1:T", f"http://127.0.0.1:{free_port()}", observe=recorder)
        with pytest.raises(PlatformUnreachable):
            await client.call("sendMessage", chat_id=1, text="hi")
    assert recorder.seen == [("sendMessage", 0)]


async def _no_wait() -> None:
    return None
