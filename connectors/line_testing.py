"""LINE's test double: webhook bodies as LINE sends them, signed, and its API's answers.

Replies of a LINE conversation are the messages of the reply calls answering
its events and of the push (and multicast) calls to it, in the order LINE got
them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

import orjson

from bottender.connectors.line import SOURCE_ID_FIELDS
from bottender.connectors.testing import (
    Answer,
    ApiCall,
    Replies,
    Reply,
    Tester,
    TestUser,
    next_id,
)

#: A 1x1 PNG: the content of every image a test user sends.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
BOT_USER_ID = "U" + "b0" * 16


class LineDouble:
    """Test credentials for the channel, signed bodies, and LINE's answers."""

    platform = "line"

    def __init__(self) -> None:
        self.secret = secrets.token_hex(16)
        self.path = "/webhooks/line"
        #: reply token -> the conversation its event came from; a token answers once.
        self._tokens: dict[str, str] = {}

    def channel(self, configured: dict[str, Any]) -> dict[str, Any]:
        self.path = configured.get("path", self.path)
        # The tester waits for the bot: an immediate acknowledgement would return before it ran.
        configured = {k: v for k, v in configured.items() if k != "ack"}
        return {
            **configured,
            "enabled": True,
            "path": self.path,
            "access_token": "testing-line-access-token",
            "channel_secret": self.secret,
            "deadline": 3600.0,  # the tester waits for the bot, never for a deadline
        }

    def webhook(self, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = orjson.dumps({"destination": BOT_USER_ID, "events": [event]})
        signature = base64.b64encode(hmac.new(self.secret.encode(), body, hashlib.sha256).digest())
        return body, {"content-type": "application/json", "x-line-signature": signature.decode()}

    def reply_token(self, conversation: str) -> str:
        token = secrets.token_hex(16)
        self._tokens[token] = conversation
        return token

    def owns(self, call: ApiCall) -> bool:
        return call.path.startswith("/v2/bot/")

    def answer(self, call: ApiCall) -> tuple[Answer, list[tuple[str, Reply]]]:
        path, body = call.path, call.body if isinstance(call.body, dict) else {}
        if path == "/v2/bot/message/reply":
            conversation = self._tokens.pop(body.get("replyToken", ""), None)
            if conversation is None:
                return Answer(400, {"message": "Invalid reply token"}), []
            return self._sent(body, [conversation])
        if path == "/v2/bot/message/push":
            return self._sent(body, [f"line:{body.get('to')}"])
        if path == "/v2/bot/message/multicast":
            return self._sent(body, [f"line:{to}" for to in body.get("to") or []])
        if path.endswith("/content"):
            return Answer(content=PNG, content_type="image/png"), []
        if path.startswith("/v2/bot/profile/") or "/member/" in path:
            user_id = path.rsplit("/", 1)[-1]
            return Answer(body=profile(user_id)), []
        if path == "/v2/bot/info":
            return Answer(
                body={"userId": BOT_USER_ID, "basicId": "@testbot", "displayName": "Test bot"}
            ), []
        return Answer(body={}), []

    def _sent(
        self, body: dict[str, Any], conversations: list[str]
    ) -> tuple[Answer, list[tuple[str, Reply]]]:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        replies = [(c, _reply(m)) for c in conversations for m in messages]
        sent = [{"id": str(next_id()), "quoteToken": secrets.token_hex(8)} for _ in messages]
        return Answer(body={"sentMessages": sent}), replies


def profile(user_id: str) -> dict[str, Any]:
    return {
        "displayName": f"User {user_id}",
        "userId": user_id,
        "pictureUrl": f"https://profile.line-scdn.net/{user_id}",
        "statusMessage": "",
        "language": "en",
    }


def _reply(message: dict[str, Any]) -> Reply:
    kind = str(message.get("type", "?"))
    text = message.get("text") if kind == "text" else None
    return Reply(kind, text, message)


class LineUser(TestUser):
    """A LINE user, in a 1:1 chat (``bot.line_user``) or a group (``bot.line_group``)."""

    platform = "line"

    def __init__(
        self, tester: Tester, double: LineDouble, user_id: str, group_id: str | None = None
    ) -> None:
        super().__init__(tester)
        self._double = double
        self.user_id = user_id
        self.group_id = group_id
        kind = "group" if group_id else "user"
        self.source: dict[str, Any] = {"type": kind, "userId": user_id}
        if group_id:
            self.source["groupId"] = group_id
        self.conversation = f"line:{self.source[SOURCE_ID_FIELDS[kind]]}"
        self.name = user_id if not group_id else f"{user_id}@{group_id}"

    async def says(self, text: str) -> Replies:
        return await self._message({"type": "text", "text": text}, f"> {text}")

    async def taps(self, data: str, *, params: dict[str, Any] | None = None) -> Replies:
        """A postback (a button, a rich menu area) with ``data``; ``params`` of date pickers."""
        postback: dict[str, Any] = {"data": data}
        if params:
            postback["params"] = params
        return await self._event({"type": "postback", "postback": postback}, f"taps {data!r}")

    async def sends_image(self) -> Replies:
        message = {"type": "image", "contentProvider": {"type": "line"}}
        return await self._message(message, "sends an image")

    async def sends_location(
        self, latitude: float, longitude: float, *, title: str = "Location", address: str = ""
    ) -> Replies:
        message = {
            "type": "location",
            "title": title,
            "address": address,
            "latitude": latitude,
            "longitude": longitude,
        }
        return await self._message(message, f"sends location {latitude}, {longitude}")

    async def sends_sticker(self, package_id: str = "446", sticker_id: str = "1988") -> Replies:
        message = {
            "type": "sticker",
            "packageId": package_id,
            "stickerId": sticker_id,
            "stickerResourceType": "STATIC",
            "keywords": ["happy"],
        }
        return await self._message(message, f"sends sticker {package_id}/{sticker_id}")

    async def follows(self) -> Replies:
        """Adds the bot as a friend (or unblocks it)."""
        return await self._event({"type": "follow", "follow": {"isUnblocked": False}}, "follows")

    async def unfollows(self) -> Replies:
        return await self._event({"type": "unfollow"}, "unfollows", reply=False)

    async def _message(self, message: dict[str, Any], said: str) -> Replies:
        message = {"id": str(next_id()), **message}
        if message["type"] in ("text", "image", "sticker", "video"):
            message["quoteToken"] = secrets.token_hex(8)
        return await self._event({"type": "message", "message": message}, said)

    async def _event(self, fields: dict[str, Any], said: str, *, reply: bool = True) -> Replies:
        event: dict[str, Any] = {
            **fields,
            "webhookEventId": "01" + secrets.token_hex(12).upper(),
            "deliveryContext": {"isRedelivery": False},
            "timestamp": int(time.time() * 1000),
            "source": dict(self.source),
            "mode": "active",
        }
        if reply:
            event["replyToken"] = self._double.reply_token(self.conversation)
        body, headers = self._double.webhook(event)
        return await self._send(body, headers, said)
