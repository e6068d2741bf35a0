"""The console shows a cross-platform picture as its URL, so a bot using send_image runs there."""

from __future__ import annotations

from bottender.connectors.console import ConsoleConnector


async def test_send_image_in_the_console_prints_the_url():
    lines: list[str] = []
    connector = ConsoleConnector(initial_state={}, write=lines.append)
    [event] = connector.parse({"text": "a cat please"})
    context = connector.create_context(event, None)
    await context.send_image("https://example.com/cat.jpg")
    await context.send_text("here")
    assert lines == ["Bot > [image] https://example.com/cat.jpg", "Bot > here"]
