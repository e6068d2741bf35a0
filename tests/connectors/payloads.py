"""Webhook bodies shaped exactly as LINE and Telegram send them.

LINE: the webhook body and event objects of the Messaging API reference
(destination, events[], type, mode, timestamp, source, webhookEventId,
deliveryContext, replyToken, message{id,type,text,quoteToken}).

Telegram: Update objects of the Bot API, one optional field per update, with
full Message, Chat and User objects.

Every builder returns plain dicts; tests change them freely.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
import uuid
from typing import Any

# --------------------------------------------------------------------------- LINE

#: Crockford's base32, the alphabet of the ULIDs LINE uses as webhookEventId.
_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: The two reply tokens of the console's old-style "Verify" request.
DUMMY_REPLY_TOKENS = ("0" * 32, "f" * 32)


def line_id(prefix: str, name: str) -> str:
    """A LINE id: 'U' (user), 'C' (group) or 'R' (room) and 32 hex digits."""
    return prefix + hashlib.md5(name.encode()).hexdigest()


#: The bot's own user id: the ``destination`` of every webhook body.
LINE_BOT_USER_ID = line_id("U", "the-bot")


def webhook_event_id() -> str:
    """A fresh ULID (26 characters), as LINE sends in ``webhookEventId``."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_ULID_ALPHABET[(value >> shift) & 31] for shift in range(125, -1, -5))


def reply_token() -> str:
    return uuid.uuid4().hex


def user_source(user: str = "alice") -> dict[str, Any]:
    return {"type": "user", "userId": line_id("U", user)}


def group_source(group: str = "family", user: str | None = "alice") -> dict[str, Any]:
    source = {"type": "group", "groupId": line_id("C", group)}
    if user is not None:
        source["userId"] = line_id("U", user)
    return source


def room_source(room: str = "trip", user: str | None = "alice") -> dict[str, Any]:
    source = {"type": "room", "roomId": line_id("R", room)}
    if user is not None:
        source["userId"] = line_id("U", user)
    return source


def _line_event(
    event_type: str,
    source: dict[str, Any],
    *,
    with_reply_token: bool,
    token: str | None = None,
    redelivery: bool = False,
    event_id: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {"type": event_type}
    if with_reply_token:
        event["replyToken"] = token or reply_token()
    event.update(
        {
            "mode": "active",
            "timestamp": int(time.time() * 1000),
            "source": source,
            "webhookEventId": event_id or webhook_event_id(),
            "deliveryContext": {"isRedelivery": redelivery},
        }
    )
    return event


def text_event(
    text: str,
    source: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    redelivery: bool = False,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A message event carrying a text message object."""
    event = _line_event(
        "message",
        source or user_source(),
        with_reply_token=True,
        token=token,
        redelivery=redelivery,
        event_id=event_id,
    )
    event["message"] = {
        "id": str(secrets.randbelow(10**18)),
        "type": "text",
        "quoteToken": base64.urlsafe_b64encode(secrets.token_bytes(48)).decode().rstrip("="),
        "text": text,
    }
    return event


def sticker_event(source: dict[str, Any] | None = None) -> dict[str, Any]:
    event = _line_event("message", source or user_source(), with_reply_token=True)
    event["message"] = {
        "id": str(secrets.randbelow(10**18)),
        "type": "sticker",
        "quoteToken": base64.urlsafe_b64encode(secrets.token_bytes(48)).decode().rstrip("="),
        "packageId": "446",
        "stickerId": "1988",
        "stickerResourceType": "STATIC",
        "keywords": ["Happy", "Smile"],
    }
    return event


def follow_event(source: dict[str, Any] | None = None) -> dict[str, Any]:
    event = _line_event("follow", source or user_source(), with_reply_token=True)
    event["follow"] = {"isUnblocked": False}
    return event


def unfollow_event(source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Unfollow events carry no replyToken."""
    return _line_event("unfollow", source or user_source(), with_reply_token=False)


def unsend_event(message_id: str, source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Unsend events carry no replyToken."""
    event = _line_event("unsend", source or group_source(), with_reply_token=False)
    event["unsend"] = {"messageId": message_id}
    return event


def postback_event(data: str, source: dict[str, Any] | None = None) -> dict[str, Any]:
    event = _line_event("postback", source or user_source(), with_reply_token=True)
    event["postback"] = {"data": data}
    return event


def message_event(message: dict[str, Any], source: dict[str, Any] | None = None) -> dict[str, Any]:
    """A message event with a non-text message object (image, video, location…)."""
    event = _line_event("message", source or user_source(), with_reply_token=True)
    event["message"] = {"id": str(secrets.randbelow(10**18)), **message}
    return event


#: Message objects as the Messaging API reference documents them, by type.
LINE_MESSAGES: dict[str, dict[str, Any]] = {
    "image": {
        "type": "image",
        "quoteToken": "q-image",
        "contentProvider": {"type": "line"},
        "imageSet": {"id": "E005D41A7288F41B65593ED38FF6E9834B046AB36A37921A56BC236F13A91855"},
    },
    "video": {
        "type": "video",
        "quoteToken": "q-video",
        "duration": 60000,
        "contentProvider": {"type": "external", "originalContentUrl": "https://example.com/v.mp4"},
    },
    "audio": {"type": "audio", "duration": 60000, "contentProvider": {"type": "line"}},
    "file": {"type": "file", "fileName": "file.txt", "fileSize": 2138},
    "location": {
        "type": "location",
        "title": "my location",
        "address": "1-3 Kioicho, Chiyoda-ku, Tokyo, 102-8282, Japan",
        "latitude": 35.67966,
        "longitude": 139.73669,
    },
}


def datetime_postback_event(data: str, params: dict[str, Any]) -> dict[str, Any]:
    """A postback from a datetime picker action: ``params`` holds what was picked."""
    event = postback_event(data)
    event["postback"]["params"] = params
    return event


def line_kind_event(event_type: str, source: dict[str, Any] | None = None) -> dict[str, Any]:
    """An event of one of LINE's non-message types, with its documented object."""
    group = source or group_source()
    objects: dict[str, tuple[bool, dict[str, Any]]] = {
        "join": (True, {}),
        "leave": (False, {}),
        "memberJoined": (
            True,
            {"joined": {"members": [{"type": "user", "userId": line_id("U", "bob")}]}},
        ),
        "memberLeft": (
            False,
            {"left": {"members": [{"type": "user", "userId": line_id("U", "bob")}]}},
        ),
        "beacon": (True, {"beacon": {"hwid": "d41d8cd98f", "type": "enter"}}),
        "accountLink": (True, {"link": {"result": "ok", "nonce": "xxxxxxxxxxxxxxx"}}),
        "videoPlayComplete": (True, {"videoPlayComplete": {"trackingId": "track-id"}}),
    }
    with_token, fields = objects[event_type]
    if event_type in ("beacon", "accountLink", "videoPlayComplete"):
        group = source or user_source()
    event = _line_event(event_type, group, with_reply_token=with_token)
    event.update(fields)
    return event


def future_event(source: dict[str, Any] | None = None) -> dict[str, Any]:
    """An event of a type this connector does not know (LINE adds types over time)."""
    event = _line_event("someFutureEvent", source or user_source(), with_reply_token=True)
    event["someFutureEvent"] = {"detail": "not in today's reference"}
    return event


def line_body(*events: dict[str, Any], destination: str = LINE_BOT_USER_ID) -> dict[str, Any]:
    return {"destination": destination, "events": list(events)}


def verify_body() -> dict[str, Any]:
    """What "Verify" in the LINE Developers Console sends today: no events."""
    return {"destination": LINE_BOT_USER_ID, "events": []}


def dummy_token_body() -> dict[str, Any]:
    """The older "Verify" request: two events with dummy reply tokens."""
    source = {"type": "user", "userId": "Udeadbeefdeadbeefdeadbeefdeadbeef"}
    text = text_event("Hello, world", source, token=DUMMY_REPLY_TOKENS[0])
    text["message"] = {"id": "100001", "type": "text", "text": "Hello, world"}
    sticker = sticker_event(source)
    sticker["replyToken"] = DUMMY_REPLY_TOKENS[1]
    sticker["message"] = {"id": "100002", "type": "sticker", "packageId": "1", "stickerId": "1"}
    return line_body(text, sticker)


def encode(body: Any) -> bytes:
    """Compact JSON, the bytes the platform puts on the wire."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def line_signature(body: bytes, channel_secret: str) -> str:
    """X-Line-Signature: base64 of HMAC-SHA256 of the raw body, keyed by the channel secret."""
    digest = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# ----------------------------------------------------------------------- Telegram

_update_ids = itertools.count(814_300_001)
_message_ids = itertools.count(1001)
NOW = 1_735_000_000


def next_update_id() -> int:
    return next(_update_ids)


def tg_user(
    user_id: int,
    first_name: str,
    username: str | None = None,
    *,
    is_bot: bool = False,
    last_name: str | None = None,
) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
    if last_name:
        user["last_name"] = last_name
    if username:
        user["username"] = username
    if not is_bot:
        user["language_code"] = "en"
    return user


ALICE = tg_user(123456789, "Alice", "alice", last_name="Liddell")
BOB = tg_user(987654321, "Bob", "bob")
THE_BOT = tg_user(7012345678, "Counter Bot", "counter_bot", is_bot=True)


def private_chat(user: dict[str, Any]) -> dict[str, Any]:
    chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
    for field in ("last_name", "username"):
        if field in user:
            chat[field] = user[field]
    return chat


GROUP = {"id": -4012345678, "type": "group", "title": "Book club"}
SUPERGROUP = {"id": -1001234567890, "type": "supergroup", "title": "Readers", "username": "readers"}
FORUM = {"id": -1002223334445, "type": "supergroup", "title": "Support", "is_forum": True}
CHANNEL = {"id": -1009876543210, "type": "channel", "title": "Daily news", "username": "daily"}


def tg_message(
    chat: dict[str, Any],
    sender: dict[str, Any] | None = None,
    text: str | None = "hello",
    **fields: Any,
) -> dict[str, Any]:
    """A Message; ``sender`` is ``from`` (channel posts have none: pass ``None``)."""
    message: dict[str, Any] = {"message_id": next(_message_ids)}
    if sender is not None:
        message["from"] = sender
    if chat["type"] == "channel":
        message["sender_chat"] = chat
    message["chat"] = chat
    message["date"] = NOW
    if text is not None:
        message["text"] = text
    message.update(fields)
    return message


def update(kind: str, payload: dict[str, Any], update_id: int | None = None) -> dict[str, Any]:
    """An Update: ``update_id`` and exactly one optional field."""
    return {"update_id": next_update_id() if update_id is None else update_id, kind: payload}


def text_update(
    text: str = "hello", chat: dict[str, Any] | None = None, sender: dict[str, Any] = ALICE
) -> dict[str, Any]:
    return update("message", tg_message(chat or private_chat(sender), sender, text))


def command_update(command: str, args: str = "", sender: dict[str, Any] = ALICE) -> dict[str, Any]:
    """A command message (``/start@counter_bot ref42``) with its ``bot_command`` entity."""
    text = f"{command} {args}" if args else command
    entity = {"type": "bot_command", "offset": 0, "length": len(command)}
    return update("message", tg_message(private_chat(sender), sender, text, entities=[entity]))


def callback_update(data: str, sender: dict[str, Any] = ALICE) -> dict[str, Any]:
    """A tap on an inline keyboard button of a message the bot sent in a private chat."""
    return update(
        "callback_query",
        {
            "id": "4382bfdwdsb323b2d9",
            "from": sender,
            "message": tg_message(private_chat(sender), THE_BOT, "Pick one"),
            "chat_instance": "-8132470924150391241",
            "data": data,
        },
    )


def media_update(field: str, value: Any, sender: dict[str, Any] = ALICE) -> dict[str, Any]:
    """A message carrying ``field`` (photo, document, voice, location, contact…) and no text."""
    return update("message", tg_message(private_chat(sender), sender, None, **{field: value}))


#: Message fields as the Bot API documents them, by field.
TELEGRAM_MEDIA: dict[str, Any] = {
    "photo": [
        {
            "file_id": "AgACAgIAAxk-s",
            "file_unique_id": "AQADs",
            "file_size": 1204,
            "width": 90,
            "height": 67,
        },
        {
            "file_id": "AgACAgIAAxk-m",
            "file_unique_id": "AQADm",
            "file_size": 14515,
            "width": 320,
            "height": 240,
        },
    ],
    "video": {
        "file_id": "BAACAgIAAxk",
        "file_unique_id": "AgADv",
        "width": 640,
        "height": 360,
        "duration": 5,
    },
    "audio": {"file_id": "CQACAgIAAxk", "file_unique_id": "AgADa", "duration": 180},
    "voice": {
        "file_id": "AwACAgIAAxk",
        "file_unique_id": "AgADw",
        "duration": 3,
        "mime_type": "audio/ogg",
    },
    "document": {"file_id": "BQACAgIAAxk", "file_unique_id": "AgADd", "file_name": "menu.pdf"},
    "sticker": {
        "file_id": "CAACAgIAAxk",
        "file_unique_id": "AgADs",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    },
    "location": {"latitude": 48.858844, "longitude": 2.294351, "horizontal_accuracy": 20.5},
    "contact": {"phone_number": "+33123456789", "first_name": "Alice", "user_id": 123456789},
}


def topic_message(thread_id: int, text: str = "help!") -> dict[str, Any]:
    """A message in a forum topic of a forum supergroup."""
    return tg_message(FORUM, ALICE, text, message_thread_id=thread_id, is_topic_message=True)


def business_message(text: str = "is the shop open?") -> dict[str, Any]:
    """A customer (Bob) writing to a business account whose bot is connected."""
    return tg_message(private_chat(BOB), BOB, text, business_connection_id="bc-4242")


def guest_message(text: str = "@counting_bot how many?") -> dict[str, Any]:
    """Alice summoning the bot as a guest in a supergroup it is no member of (Bot API 10.0)."""
    return tg_message(
        SUPERGROUP,
        ALICE,
        text,
        guest_query_id="gq-5566",
        guest_bot_caller_user=ALICE,
        guest_bot_caller_chat=SUPERGROUP,
    )


def _member(user: dict[str, Any], status: str) -> dict[str, Any]:
    return {"status": status, "user": user}


def _premium_boost(user: dict[str, Any]) -> dict[str, Any]:
    return {"source": "premium", "user": user}


def _emoji(emoji: str) -> dict[str, Any]:
    return {"type": "emoji", "emoji": emoji}


#: One realistic payload of every update kind of the current Bot API, by kind.
def all_update_payloads() -> dict[str, dict[str, Any]]:
    poll = {
        "id": "5463217890123456789",
        "question": "Which book next?",
        "options": [
            {"text": "Dune", "voter_count": 3},
            {"text": "Emma", "voter_count": 1},
        ],
        "total_voter_count": 4,
        "is_closed": False,
        "is_anonymous": True,
        "type": "regular",
        "allows_multiple_answers": False,
    }
    return {
        "message:private": tg_message(private_chat(ALICE), ALICE, "hi"),
        "message:group": tg_message(GROUP, ALICE, "hi all"),
        "message:supergroup": tg_message(SUPERGROUP, ALICE, "hi readers"),
        "edited_message": tg_message(SUPERGROUP, ALICE, "hi readers!", edit_date=NOW + 30),
        "channel_post": tg_message(CHANNEL, None, "Today's news", author_signature="Ed"),
        "edited_channel_post": tg_message(CHANNEL, None, "Today's news (fixed)", edit_date=NOW),
        "business_message": business_message(),
        "edited_business_message": {**business_message("open today?"), "edit_date": NOW + 5},
        "guest_message": guest_message(),
        "deleted_business_messages": {
            "business_connection_id": "bc-4242",
            "chat": private_chat(BOB),
            "message_ids": [311, 312],
        },
        "message_reaction": {
            "chat": SUPERGROUP,
            "message_id": 77,
            "user": ALICE,
            "date": NOW,
            "old_reaction": [],
            "new_reaction": [_emoji("👍")],
        },
        "message_reaction_count": {
            "chat": CHANNEL,
            "message_id": 78,
            "date": NOW,
            "reactions": [{"type": _emoji("🔥"), "total_count": 12}],
        },
        "my_chat_member": {
            "chat": GROUP,
            "from": ALICE,
            "date": NOW,
            "old_chat_member": _member(THE_BOT, "left"),
            "new_chat_member": _member(THE_BOT, "member"),
        },
        "chat_member": {
            "chat": SUPERGROUP,
            "from": BOB,
            "date": NOW,
            "old_chat_member": _member(BOB, "left"),
            "new_chat_member": _member(BOB, "member"),
            "via_join_request": True,
        },
        "chat_join_request": {
            "chat": SUPERGROUP,
            "from": BOB,
            "user_chat_id": BOB["id"],
            "date": NOW,
            "bio": "I read a lot",
        },
        "chat_boost": {
            "chat": CHANNEL,
            "boost": {
                "boost_id": "boost-1",
                "add_date": NOW,
                "expiration_date": NOW + 86400 * 30,
                "source": _premium_boost(ALICE),
            },
        },
        "removed_chat_boost": {
            "chat": CHANNEL,
            "boost_id": "boost-1",
            "remove_date": NOW + 60,
            "source": _premium_boost(ALICE),
        },
        "callback_query:message": {
            "id": "4382bfdwdsb323b2d9",
            "from": ALICE,
            "message": tg_message(GROUP, THE_BOT, "Pick one"),
            "chat_instance": "-8132470924150391241",
            "data": "pick:1",
        },
        "callback_query:inline": {
            "id": "4382bfdwdsb323b2e0",
            "from": ALICE,
            "inline_message_id": "AAAAAKRgQwAK8P5z1S8u0A",
            "chat_instance": "-8132470924150391242",
            "data": "vote:yes",
        },
        "inline_query": {
            "id": "3456789012345678901",
            "from": ALICE,
            "query": "dune",
            "offset": "",
            "chat_type": "sender",
        },
        "chosen_inline_result": {
            "result_id": "book-17",
            "from": ALICE,
            "inline_message_id": "AAAAAKRgQwAK8P5z1S8u0B",
            "query": "dune",
        },
        "shipping_query": {
            "id": "ship-1",
            "from": BOB,
            "invoice_payload": "order-9",
            "shipping_address": {
                "country_code": "DE",
                "state": "",
                "city": "Berlin",
                "street_line1": "Unter den Linden 1",
                "street_line2": "",
                "post_code": "10117",
            },
        },
        "pre_checkout_query": {
            "id": "pcq-1",
            "from": BOB,
            "currency": "EUR",
            "total_amount": 1450,
            "invoice_payload": "order-9",
        },
        "purchased_paid_media": {"from": BOB, "paid_media_payload": "chapter-3"},
        "poll": poll,
        "poll_answer:user": {"poll_id": poll["id"], "user": ALICE, "option_ids": [0]},
        "poll_answer:voter_chat": {"poll_id": poll["id"], "voter_chat": CHANNEL, "option_ids": [1]},
        "poll_answer:voter_group": {
            "poll_id": poll["id"],
            "voter_chat": SUPERGROUP,
            "option_ids": [0],
        },
        "business_connection": {
            "id": "bc-4242",
            "user": BOB,
            "user_chat_id": BOB["id"],
            "date": NOW,
            "is_enabled": True,
        },
        "managed_bot": {
            "user": ALICE,
            "bot": tg_user(7099999999, "Alice's helper", "alice_helper_bot", is_bot=True),
        },
    }
