"""The recording platform answers the richer calls as the platforms do: message content,
profiles, multipart uploads. (These run once the send methods of API.md have landed.)"""

from __future__ import annotations

import pytest

from bottender.connectors.line import LineContext
from bottender.connectors.line_testing import PNG
from bottender.connectors.telegram import TelegramContext
from bottender.testing import BotTester

pytestmark = pytest.mark.skipif(
    not hasattr(LineContext, "get_message_content") or not hasattr(TelegramContext, "send_photo"),
    reason="the send methods of API.md have not landed yet",
)


async def rich(context) -> None:
    if context.platform == "line":
        content = await context.get_message_content()
        profile = await context.get_user_profile()
        await context.send_text(f"{profile['displayName']} sent {len(content)} bytes")
    else:
        await context.send_photo(b"\x89PNG fake bytes", caption="uploaded")


async def test_line_content_and_profile_and_a_telegram_upload():
    async with BotTester(rich) as bot:
        line = bot.line_user("U1")
        assert await line.sends_image() == [f"User U1 sent {len(PNG)} bytes"]
        telegram = bot.telegram_user(42)
        (photo,) = await telegram.says("upload")
        assert (photo.kind, photo.text) == ("photo", "uploaded")
        assert photo.raw["photo"] == b"\x89PNG fake bytes"
        assert photo.raw["chat_id"] in (42, "42")
