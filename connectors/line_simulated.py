"""LINE webhook events made up locally, shaped exactly as LINE sends them.

The console (``bottender start --console --platform line``) hands these to a
bot, so what the bot reads (``event.text``, ``postback_data``, the message's
type, a location's coordinates) is what it will read from LINE itself. The
shapes follow the Messaging API reference's webhook event objects.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from bottender.connectors.line import LineEvent

#: The console's user, as a LINE user id (``U`` and 32 hex digits).
USER_ID = "U" + "0" * 31 + "1"
KINDS = ("text", "payload", "image", "location")
_ids = itertools.count(int(time.time() * 1000))


def simulated_event(kind: str, value: Any = None, *, user_id: str = USER_ID) -> LineEvent:
    """A LINE event: ``text`` (value: str), ``payload`` (a postback's data), ``image``,
    ``location`` (value: ``(latitude, longitude)``)."""
    event: dict[str, Any] = {
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": False},
        "replyToken": uuid.uuid4().hex,
    }
    if kind == "payload":
        event.update(type="postback", postback={"data": str(value)})
        return LineEvent(event)
    message: dict[str, Any] = {"id": str(next(_ids)), "quoteToken": uuid.uuid4().hex}
    if kind == "text":
        message.update(type="text", text=str(value))
    elif kind == "image":
        message.update(type="image", contentProvider={"type": "line"})
    elif kind == "location":
        latitude, longitude = value
        message.update(
            type="location", title="Console", address="", latitude=latitude, longitude=longitude
        )
    else:
        raise ValueError(f"unknown kind {kind!r} (choose from {KINDS})")
    event.update(type="message", message=message)
    return LineEvent(event)
