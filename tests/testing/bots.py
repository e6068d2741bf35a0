"""Bots the test kit's own tests talk to."""

from __future__ import annotations

import inspect
import json

from bottender.connectors.base import Context


async def seven(context: Context) -> None:
    """Sends seven texts for one event: LINE replies with five and pushes two."""
    for number in range(1, 8):
        await context.send_text(f"message {number}")


async def explosive(context: Context) -> None:
    """Counts, but raises on "boom" after changing the state."""
    count = context.state["count"] + 1
    context.set_state({"count": count})
    if context.event.text == "boom":
        raise RuntimeError("the bot blew up")
    await context.send_text(f"Count: {count}")


async def describe(context: Context) -> None:
    """Replies with what it saw of the event, as JSON, so tests check the bodies' shapes."""
    raw = context.event.raw
    if context.platform == "line":
        seen = {
            "type": raw["type"],
            "message": (raw.get("message") or {}).get("type"),
            "postback": (raw.get("postback") or {}).get("data"),
            "source": raw["source"],
            "session": context.session.id if context.session else None,
        }
    else:
        kind = next(k for k in raw if k != "update_id")
        payload = raw[kind]
        message = payload.get("message", payload) if kind == "callback_query" else payload
        seen = {
            "kind": kind,
            "fields": sorted(k for k in message if k not in ("message_id", "date", "from", "chat")),
            "data": payload.get("data"),
            "text": message.get("text"),
            "entities": message.get("entities"),
            "session": context.session.id if context.session else None,
        }
    await context.send_text(json.dumps(seen, sort_keys=True))


async def media(context: Context) -> None:
    """Telegram: a photo with a caption and a typing indicator; LINE: an image and a sticker."""
    if context.platform == "telegram":
        await context.call("sendChatAction", chat_id=context.chat_id, action="typing")
        await context.call("sendPhoto", chat_id=context.chat_id, photo="https://x.test/a.png",
                           caption="a picture")  # fmt: skip
    else:
        sent = context.send(  # a coroutine once every send is awaited (API.md); sync before
            {"type": "image", "originalContentUrl": "https://x.test/a.png",
             "previewImageUrl": "https://x.test/a.png"},
            {"type": "sticker", "packageId": "446", "stickerId": "1988"},
        )  # fmt: skip
        if inspect.isawaitable(sent):
            await sent


def sends(bot) -> list:
    """The API calls a tester recorded, less the identity lookups a connector may make at
    start-up in the background (LINE's bot info, Telegram's getMe)."""
    return [call for call in bot.calls if not call.path.endswith(("/v2/bot/info", "/getMe"))]
