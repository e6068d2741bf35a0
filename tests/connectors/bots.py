"""Bots for the connector tests; they report what they saw through ``RECORDED``.

The gateway runs them in its own thread of this same process, so the tests
read ``RECORDED`` directly. ``tests/connectors/conftest.py`` clears it before
every test.
"""

from __future__ import annotations

from typing import Any

from bottender.connectors.base import Context

#: One entry per event a recording bot ran for, in the order they ran.
RECORDED: list[dict[str, Any]] = []


def snapshot(context: Context) -> dict[str, Any]:
    session = context.session
    return {
        "platform": context.platform,
        "session_id": session.id if session else None,
        "user": session.user if session else None,
        "group": session.group if session else None,
        "room": session.room if session else None,
        "channel": session.channel if session else None,
        "text": context.event.text,
    }


async def recorder(context: Context) -> None:
    """Records the session the event was given, and sends nothing."""
    RECORDED.append(snapshot(context))


async def seven_texts(context: Context) -> None:
    """Sends more messages than one LINE reply can carry."""
    for number in range(1, 8):
        await context.send_text(f"message {number}")


async def line_reply_and_push(context: Context) -> None:
    """Uses LINE's explicit reply and push."""
    await context.reply_text("replied")  # type: ignore[attr-defined]
    await context.push_text("pushed")  # type: ignore[attr-defined]


async def catching_sender(context: Context) -> None:
    """Sends a text, catching and recording what the platform API raised."""
    try:
        await context.send_text("hello")
    except Exception as exc:
        RECORDED.append({"error": str(exc), "type": type(exc).__name__})
    else:
        RECORDED.append({"error": None})
