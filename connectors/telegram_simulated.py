"""Telegram updates made up locally, shaped exactly as the Bot API sends them.

The console (``bottender start --console --platform telegram``) hands these to
a bot, so what it reads (``event.text``, ``callback_data``, a photo, a
location) is what it will read from Telegram itself. The shapes follow the
Bot API's ``Update``, ``Message`` and ``CallbackQuery`` objects.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from bottender.connectors.telegram import TelegramEvent

#: The console's user, who chats with the bot in a private chat of the same id.
USER = {"id": 1, "is_bot": False, "first_name": "You", "language_code": "en"}
CHAT = {"id": 1, "type": "private", "first_name": "You"}
KINDS = ("text", "payload", "image", "location")
#: Update ids must differ from those a persistent store remembers from earlier runs.
_update_ids = itertools.count(time.time_ns() // 1000)
_message_ids = itertools.count(1)


def _message(**content: Any) -> dict[str, Any]:
    return {
        "message_id": next(_message_ids),
        "from": dict(USER),
        "chat": dict(CHAT),
        "date": int(time.time()),
        **content,
    }


def simulated_event(kind: str, value: Any = None) -> TelegramEvent:
    """An update: ``text`` (value: str; ``/command`` gets its ``bot_command`` entity),
    ``payload`` (a callback query's data), ``image`` (a photo), ``location``
    (value: ``(latitude, longitude)``)."""
    if kind == "payload":
        query = {
            "id": str(uuid.uuid4().int)[:19],
            "from": dict(USER),
            "chat_instance": "-1",
            "data": str(value),
            "message": _message(text="(a message with an inline keyboard)"),
        }
        return _update("callback_query", query)
    if kind == "text":
        text = str(value)
        content: dict[str, Any] = {"text": text}
        if text.startswith("/") and len(text) > 1:
            command = text.split()[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return _update("message", _message(**content))
    if kind == "image":
        photo = [
            {
                "file_id": f"console-photo-{size}",
                "file_unique_id": f"console-{size}",
                "width": size,
                "height": size,
                "file_size": size * 40,
            }
            for size in (90, 320, 800)
        ]
        return _update("message", _message(photo=photo))
    if kind == "location":
        latitude, longitude = value
        return _update("message", _message(location={"latitude": latitude, "longitude": longitude}))
    raise ValueError(f"unknown kind {kind!r} (choose from {KINDS})")


def _update(kind: str, payload: dict[str, Any]) -> TelegramEvent:
    return TelegramEvent({"update_id": next(_update_ids), kind: payload}, kind)
