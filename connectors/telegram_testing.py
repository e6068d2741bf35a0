"""Telegram's test double: updates as the Bot API posts them, and its methods' answers.

Replies of a Telegram conversation are the ``send*`` calls to its chat
(``sendChatAction``, a typing indicator, is not a message and is left out, as
LINE's loading animation is). Every call, reply or not, is in ``bot.calls``.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from bottender.connectors.testing import (
    Answer,
    ApiCall,
    Replies,
    Reply,
    Tester,
    TestUser,
    next_id,
)

BOT_USER = {"id": 777000, "is_bot": True, "first_name": "Test bot", "username": "test_bot"}
#: Methods whose parameters carry the message's text, or its caption.
TEXT_FIELDS = ("text", "caption", "question")
NOT_REPLIES = frozenset({"sendChatAction"})
FILE_BYTES = b"\x89PNG\r\n\x1a\n testing file"


def reply_kind(method: str) -> str:
    """``sendMessage``: ``text``; ``sendPhoto``: ``photo``; ``sendMediaGroup``: ``media_group``."""
    if method == "sendMessage":
        return "text"
    name = method[len("send") :]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class TelegramDouble:
    """Test credentials for the channel (with a secret token) and the Bot API's answers."""

    platform = "telegram"

    def __init__(self) -> None:
        self.token = "123456:TESTING-telegram-token"
        self.secret_token = secrets.token_hex(16)
        self.path = "/webhooks/telegram"
        #: chat id -> the last message the bot sent there, for callback queries to point at.
        self.last_sent: dict[int, dict[str, Any]] = {}

    def channel(self, configured: dict[str, Any]) -> dict[str, Any]:
        self.path = configured.get("path", self.path)
        # The tester waits for the bot: an immediate acknowledgement would return before it ran.
        configured = {k: v for k, v in configured.items() if k != "ack"}
        return {
            **configured,
            "enabled": True,
            "path": self.path,
            "access_token": self.token,
            "secret_token": self.secret_token,
            "deadline": 3600.0,
        }

    def webhook(self, update: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        import orjson

        return orjson.dumps(update), {
            "content-type": "application/json",
            "x-telegram-bot-api-secret-token": self.secret_token,
        }

    def owns(self, call: ApiCall) -> bool:
        return call.path.startswith(("/bot", "/file/bot"))

    def answer(self, call: ApiCall) -> tuple[Answer, list[tuple[str, Reply]]]:
        if call.path.startswith("/file/bot"):
            return Answer(content=FILE_BYTES, content_type="application/octet-stream"), []
        method = call.path.rsplit("/", 1)[-1]
        params = call.body if isinstance(call.body, dict) else {}
        if method == "getMe":
            return _ok(BOT_USER), []
        if method == "getFile":
            file_id = str(params.get("file_id"))
            return _ok({"file_id": file_id, "file_unique_id": file_id[-8:], "file_size": 16,
                        "file_path": f"photos/{file_id}.jpg"}), []  # fmt: skip
        chat_id = params.get("chat_id")
        if method.startswith("send") and chat_id is not None:
            message = self._message(chat_id, params, method)
            if method in NOT_REPLIES:
                return _ok(True), []
            text = next((params[f] for f in TEXT_FIELDS if isinstance(params.get(f), str)), None)
            reply = Reply(reply_kind(method), text, params)
            return _ok(message), [(f"telegram:{chat_id}", reply)]
        if method.startswith("edit") and chat_id is not None:
            return _ok(self._message(chat_id, params, method)), []
        return _ok(True), []

    def _message(self, chat_id: Any, params: dict[str, Any], method: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": params.get("message_id") or next_id(),
            "from": BOT_USER,
            "chat": {"id": chat_id, "type": "private" if _int(chat_id) > 0 else "group"},
            "date": int(time.time()),
        }
        for name in ("text", "caption", "reply_markup"):
            if name in params:
                message[name] = params[name]
        if isinstance(chat_id, int):
            self.last_sent[chat_id] = message
        return message


def _ok(result: Any) -> Answer:
    return Answer(body={"ok": True, "result": result})


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


class TelegramUser(TestUser):
    """A Telegram user in a private chat (``bot.telegram_user``) or a group (``telegram_group``)."""

    platform = "telegram"

    def __init__(
        self,
        tester: Tester,
        double: TelegramDouble,
        user_id: int,
        chat_id: int | None = None,
        **profile: Any,
    ) -> None:
        super().__init__(tester)
        self._double = double
        self.user_id = user_id
        self.chat_id = user_id if chat_id is None else chat_id
        self.sender = {
            "id": user_id,
            "is_bot": False,
            "first_name": f"User {user_id}",
            "language_code": "en",
            **profile,
        }
        if chat_id is None:
            self.chat: dict[str, Any] = {"id": user_id, "type": "private"}
            self.chat.update(
                {
                    k: v
                    for k, v in self.sender.items()
                    if k in ("first_name", "last_name", "username")
                }
            )
        else:
            kind = "supergroup" if chat_id < -(10**12) else "group"
            self.chat = {"id": chat_id, "type": kind, "title": f"Group {chat_id}"}
        self.conversation = f"telegram:{self.chat_id}"
        self.name = str(user_id) if chat_id is None else f"{user_id}@{chat_id}"

    async def says(self, text: str) -> Replies:
        return await self._message({"text": text}, f"> {text}")

    async def sends_command(self, command: str, args: str | None = None) -> Replies:
        """``/command args``, marked as a bot command the way Telegram marks it."""
        text = f"/{command}" + (f" {args}" if args else "")
        entity = {"offset": 0, "length": len(command) + 1, "type": "bot_command"}
        return await self._message({"text": text, "entities": [entity]}, f"> {text}")

    async def taps(self, data: str) -> Replies:
        """A callback query from an inline keyboard button with ``data``.

        The button is on the last message the bot sent to this chat (or on a
        message made up for the test, if it sent none).
        """
        message = self._double.last_sent.get(self.chat_id) or {
            "message_id": next_id(),
            "from": BOT_USER,
            "chat": self.chat,
            "date": int(time.time()),
            "text": "",
        }
        query = {
            "id": str(next_id()),
            "from": self.sender,
            "message": message,
            "chat_instance": str(abs(hash(self.chat_id))),
            "data": data,
        }
        return await self._update({"callback_query": query}, f"taps {data!r}")

    async def sends_image(self, caption: str | None = None) -> Replies:
        file_id = "AgAC" + secrets.token_hex(12)
        sizes = [
            {"file_id": f"{file_id}{size}", "file_unique_id": f"AQAD{size}", "width": size,
             "height": size, "file_size": size * 40}
            for size in (90, 320, 800)
        ]  # fmt: skip
        fields: dict[str, Any] = {"photo": sizes}
        if caption is not None:
            fields["caption"] = caption
        return await self._message(fields, "sends an image")

    async def sends_location(self, latitude: float, longitude: float) -> Replies:
        location = {"latitude": latitude, "longitude": longitude}
        return await self._message(
            {"location": location}, f"sends location {latitude}, {longitude}"
        )

    async def sends_sticker(self, emoji: str = "👍") -> Replies:
        sticker = {
            "file_id": "CAAC" + secrets.token_hex(12),
            "file_unique_id": "AgAD" + secrets.token_hex(4),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return await self._message({"sticker": sticker}, f"sends sticker {emoji}")

    async def _message(self, fields: dict[str, Any], said: str) -> Replies:
        message = {
            "message_id": next_id(),
            "from": self.sender,
            "chat": self.chat,
            "date": int(time.time()),
            **fields,
        }
        return await self._update({"message": message}, said)

    async def _update(self, fields: dict[str, Any], said: str) -> Replies:
        body, headers = self._double.webhook({"update_id": next_id(), **fields})
        return await self._send(body, headers, said)
