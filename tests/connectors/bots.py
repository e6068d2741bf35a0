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


async def rich_line(context: Context) -> None:
    """A menu: buttons, a picture and a quick reply, each send awaited."""
    sent = await context.send_buttons_template(  # type: ignore[attr-defined]
        "Menu",
        text="What would you like?",
        actions=[{"type": "postback", "label": "Tea", "data": "BUY:tea"}],
    )
    await context.send(
        {
            "type": "image",
            "originalContentUrl": "https://example.com/t.jpg",  # type: ignore[attr-defined]
            "previewImageUrl": "https://example.com/t.jpg",
        }
    )
    await context.send_text(
        "More?", quick_reply=[{"type": "message", "label": "Again", "text": "again"}]
    )
    RECORDED.append({"sent": sent})


async def rich_telegram(context: Context) -> None:
    """A photo with an inline keyboard; a pressed button edits its message and answers."""
    if context.event.raw.get("callback_query"):
        edited = await context.edit_message_text("Thanks!")  # type: ignore[attr-defined]
        answered = await context.answer_callback_query("Bought")  # type: ignore[attr-defined]
        RECORDED.append({"edited": edited, "answered": answered})
        return
    keyboard = {"inline_keyboard": [[{"text": "Buy", "callback_data": "BUY:1"}]]}
    sent = await context.send_photo(b"\x89PNG fake", caption="Tea", reply_markup=keyboard)  # type: ignore[attr-defined]
    RECORDED.append({"sent": sent})
