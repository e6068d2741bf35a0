"""Telegram: secret-token check, updates, session keys and the sending context."""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import aiohttp

from bottender.connectors.api import PlatformApiError
from bottender.connectors.base import (
    REQUIRED,
    BadRequest,
    Connector,
    Context,
    Event,
    check_copied,
    single_header,
)
from bottender.connectors.telegram_admin import TelegramAdmin
from bottender.connectors.telegram_api import DEFAULT_ORIGIN, TelegramClient
from bottender.sessions.session import Session

logger = logging.getLogger("bottender.telegram")

#: Updates that happen in a chat: the session is the chat's.
CHAT_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "guest_message",
        "message_reaction",
        "message_reaction_count",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
#: Updates with no chat: the session is the sender's (private chat id == user id).
SENDER_UPDATES = frozenset(
    {
        "inline_query",
        "chosen_inline_result",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll_answer",
        "business_connection",
        "managed_bot",
    }
)
#: Every update kind the runtime hands to bots; ``allowed_updates`` when registering.
UPDATE_KINDS = (*sorted(CHAT_UPDATES), *sorted(SENDER_UPDATES), "callback_query", "poll")
#: The title of the inline result a guest bot answers with; Telegram shows the message itself.
GUEST_TITLE_LENGTH = 64
#: Message-like payloads, whose text and chat the bot reads directly.
MESSAGE_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_message",
        "edited_business_message",
        "guest_message",
    }
)


#: Message fields that make a message an image, video… (the cross-platform names).
MEDIA_FIELDS = {
    "is_image": ("photo",),
    "is_video": ("video", "video_note"),
    "is_audio": ("audio",),
    "is_voice": ("voice",),
    "is_file": ("document",),
    "is_sticker": ("sticker",),
    "is_contact": ("contact",),
}


class TelegramEvent(Event):
    """One update. ``kind`` is its field (``"message"``, ``"callback_query"``…).

    ``update`` is the object under that field; ``payload`` is a callback
    query's ``data``, as in Bottender. Message-like kinds (``message``,
    ``edited_message``, ``channel_post``, business and guest messages) have a
    ``text``, media checks and ``location``; ``message`` is also a callback
    query's message (the one with the button), so replies land in its chat and topic.
    """

    platform = "telegram"
    __slots__ = ("kind",)

    def __init__(self, raw: dict[str, Any], kind: str) -> None:
        super().__init__(raw)
        self.kind = kind

    @property
    def update(self) -> dict[str, Any]:
        """The update's object (the message, the callback query…), whatever its kind."""
        return self.raw[self.kind]

    @property
    def message(self) -> dict[str, Any] | None:
        if self.kind in MESSAGE_UPDATES:
            return self.update
        if self.kind == "callback_query":
            return _dict(self.update.get("message"))
        return None

    @property
    def is_message(self) -> bool:
        return self.kind in MESSAGE_UPDATES

    def _has(self, fields: tuple[str, ...]) -> bool:
        if self.kind not in MESSAGE_UPDATES:
            return False
        message = self.update
        return any(field in message for field in fields)

    @property
    def text(self) -> str | None:
        if self.kind in MESSAGE_UPDATES:
            text = self.update.get("text")
            return text if isinstance(text, str) else None
        return None

    @property
    def is_image(self) -> bool:
        return self._has(MEDIA_FIELDS["is_image"])

    is_photo = is_image

    @property
    def is_video(self) -> bool:
        return self._has(MEDIA_FIELDS["is_video"])

    @property
    def is_audio(self) -> bool:
        return self._has(MEDIA_FIELDS["is_audio"])

    @property
    def is_voice(self) -> bool:
        return self._has(MEDIA_FIELDS["is_voice"])

    @property
    def is_file(self) -> bool:
        return self._has(MEDIA_FIELDS["is_file"])

    is_document = is_file

    @property
    def is_sticker(self) -> bool:
        return self._has(MEDIA_FIELDS["is_sticker"])

    @property
    def is_contact(self) -> bool:
        return self._has(MEDIA_FIELDS["is_contact"])

    @property
    def location(self) -> dict[str, Any] | None:
        """A location message's ``location`` (or a venue's), a copy."""
        if self.kind not in MESSAGE_UPDATES:
            return None
        location = _dict(self.update.get("location"))
        return dict(location) if location is not None else None

    @property
    def is_callback_query(self) -> bool:
        return self.kind == "callback_query"

    @property
    def is_inline_query(self) -> bool:
        return self.kind == "inline_query"

    @property
    def payload(self) -> str | None:
        """A callback query's ``data``."""
        if self.kind != "callback_query":
            return None
        data = self.update.get("data")
        return data if isinstance(data, str) else None

    #: The name README documented before ``payload``; kept as an alias.
    callback_data = payload

    def _command(self) -> tuple[str, str] | None:
        """``("start", "ref42")`` for ``/start@MyBot ref42``, or ``None``."""
        text = self.text
        if not text or text[0] != "/":
            return None
        head, _, args = text.partition(" ")
        name = head[1:].partition("@")[0]
        if not name:
            return None
        return name, args.strip()

    @property
    def is_command(self) -> bool:
        return self._command() is not None

    @property
    def command(self) -> str | None:
        """The command's name without ``/`` nor ``@BotName``: ``"start"``."""
        command = self._command()
        return command[0] if command else None

    @property
    def command_args(self) -> str | None:
        """What follows the command (a deep link's ``"ref42"``), ``""`` when nothing does."""
        command = self._command()
        return command[1] if command else None

    @property
    def chat(self) -> dict[str, Any] | None:
        """The chat the update happened in, when it has one."""
        if self.kind in CHAT_UPDATES:
            return _dict(self.update.get("chat"))
        message = self.message
        return _dict(message.get("chat")) if message else None

    @property
    def sender(self) -> dict[str, Any] | None:
        """Who caused the update: ``from`` on most kinds, ``user`` on a few."""
        update = self.update
        return _dict(update.get("from")) or _dict(update.get("user"))

    @property
    def message_id(self) -> int | None:
        """The id of :attr:`message` (for a callback query, the message with the button)."""
        message = self.message
        value = message.get("message_id") if message is not None else None
        return value if isinstance(value, int) else None

    @property
    def update_id(self) -> int:
        return self.raw["update_id"]

    @property
    def delivery_id(self) -> str:
        return f"telegram:{self.update_id}"


class TelegramContext(Context):
    """``send_text`` calls ``sendMessage`` at once on the conversation's chat."""

    platform = "telegram"

    def __init__(
        self,
        event: TelegramEvent,
        session: Session | None,
        initial_state: Mapping[str, Any],
        client: TelegramClient | None,
        chat_id: int | None,
    ) -> None:
        super().__init__(event, session, initial_state)
        self.event: TelegramEvent = event
        self.client = client
        self.chat_id = chat_id

    async def send_text(self, text: str, **options: Any) -> Any:
        if self.chat_id is None:
            raise RuntimeError(f"this {self.event.kind} update has no chat to send to")
        message = self.event.message or {}
        if "guest_query_id" in message:
            return await self._answer_guest_query(message["guest_query_id"], text, options)
        if message.get("is_topic_message") and "message_thread_id" in message:
            options.setdefault("message_thread_id", message["message_thread_id"])
        if "business_connection_id" in message:
            options.setdefault("business_connection_id", message["business_connection_id"])
        return await self.call("sendMessage", chat_id=self.chat_id, text=text, **options)

    async def _answer_guest_query(
        self, guest_query_id: str, text: str, options: dict[str, Any]
    ) -> Any:
        """A bot summoned as a guest is no member of the chat: sendMessage would be refused.

        Telegram takes its answer as one inline result instead; ``options``
        (``parse_mode``, ``entities``…) shape the message text as they would
        in ``sendMessage``.
        """
        result = {
            "type": "article",
            "id": uuid.uuid4().hex,
            "title": text[:GUEST_TITLE_LENGTH] or "-",
            "input_message_content": {"message_text": text, **options},
        }
        return await self.call("answerGuestQuery", guest_query_id=guest_query_id, result=result)

    async def call(self, method: str, **params: Any) -> Any:
        """Any Bot API method, e.g. ``await context.call("getChatMember", ...)``; its ``result``."""
        if self.client is None:
            raise RuntimeError("Telegram client is not started")
        return await self.client.call(method, **params)

    # --- sends on the event's chat ---------------------------------------------------------

    def _chat(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` aimed at the event's chat (and its forum topic or business connection)."""
        if "chat_id" not in params:
            if self.chat_id is None:
                raise RuntimeError(f"this {self.event.kind} update has no chat to send to")
            params["chat_id"] = self.chat_id
            message = self.event.message or {}
            if message.get("is_topic_message") and "message_thread_id" in message:
                params.setdefault("message_thread_id", message["message_thread_id"])
            if "business_connection_id" in message:
                params.setdefault("business_connection_id", message["business_connection_id"])
        return params

    async def _send(self, method: str, params: dict[str, Any]) -> Any:
        return await self.call(method, **self._chat(params))

    async def send_photo(self, photo: Any, **params: Any) -> Any:
        """``photo``: a URL or file_id, or ``bytes`` / ``Path`` / a binary file to upload."""
        return await self._send("sendPhoto", {"photo": photo, **params})

    async def send_image(self, url: str, *, preview_url: str | None = None, **params: Any) -> Any:
        """The cross-platform picture: ``sendPhoto`` (Telegram makes its own preview)."""
        return await self.send_photo(url, **params)

    async def send_document(self, document: Any, **params: Any) -> Any:
        return await self._send("sendDocument", {"document": document, **params})

    async def send_audio(self, audio: Any, **params: Any) -> Any:
        return await self._send("sendAudio", {"audio": audio, **params})

    async def send_video(self, video: Any, **params: Any) -> Any:
        return await self._send("sendVideo", {"video": video, **params})

    async def send_voice(self, voice: Any, **params: Any) -> Any:
        return await self._send("sendVoice", {"voice": voice, **params})

    async def send_animation(self, animation: Any, **params: Any) -> Any:
        return await self._send("sendAnimation", {"animation": animation, **params})

    async def send_sticker(self, sticker: Any, **params: Any) -> Any:
        return await self._send("sendSticker", {"sticker": sticker, **params})

    async def send_location(self, latitude: float, longitude: float, **params: Any) -> Any:
        return await self._send(
            "sendLocation", {"latitude": latitude, "longitude": longitude, **params}
        )

    async def send_contact(self, phone_number: str, first_name: str, **params: Any) -> Any:
        return await self._send(
            "sendContact", {"phone_number": phone_number, "first_name": first_name, **params}
        )

    async def send_poll(self, question: str, options: list[Any], **params: Any) -> Any:
        """``options``: strings, or ``InputPollOption`` objects (``{"text": ...}``)."""
        options = [{"text": o} if isinstance(o, str) else o for o in options]
        return await self._send("sendPoll", {"question": question, "options": options, **params})

    async def send_dice(self, **params: Any) -> Any:
        return await self._send("sendDice", params)

    async def send_chat_action(self, action: str = "typing", **params: Any) -> Any:
        return await self._send("sendChatAction", {"action": action, **params})

    # --- edits and answers -----------------------------------------------------------------

    def _target_message(self, params: dict[str, Any]) -> dict[str, Any]:
        """Aim an edit at the callback query's message unless ``params`` name one."""
        if "message_id" in params or "inline_message_id" in params:
            return params if "inline_message_id" in params else self._chat(params)
        query = self.event.raw.get("callback_query") if self.event.is_callback_query else None
        if query and query.get("inline_message_id"):
            params["inline_message_id"] = query["inline_message_id"]
            return params
        message = query.get("message") if query else None
        if not isinstance(message, dict) or "message_id" not in message:
            raise RuntimeError("name the message to edit: message_id= (or inline_message_id=)")
        params["message_id"] = message["message_id"]
        if "chat_id" not in params and isinstance(message.get("chat"), dict):
            params["chat_id"] = message["chat"].get("id")
        return self._chat(params)

    async def edit_message_text(self, text: str, **params: Any) -> Any:
        """Edit a message's text; by default the message whose button was pressed."""
        return await self.call("editMessageText", text=text, **self._target_message(params))

    async def edit_message_reply_markup(self, reply_markup: Any = None, **params: Any) -> Any:
        """Replace (or, with ``None``, remove) a message's inline keyboard."""
        if reply_markup is not None:
            params["reply_markup"] = reply_markup
        return await self.call("editMessageReplyMarkup", **self._target_message(params))

    async def delete_message(self, message_id: int | None = None, **params: Any) -> Any:
        """Delete a message of this chat; by default the event's (or the pressed button's)."""
        if message_id is None:
            message = self.event.message or {}
            message_id = message.get("message_id")
            if message_id is None:
                raise RuntimeError("this update has no message to delete: pass message_id")
        return await self._send("deleteMessage", {"message_id": message_id, **params})

    async def answer_callback_query(self, text: str | None = None, **params: Any) -> Any:
        """Answer the pressed button (stops its spinner); ``text`` shows as a notification."""
        query = self._update_of("callback_query")
        if text is not None:
            params["text"] = text
        return await self.call("answerCallbackQuery", callback_query_id=query["id"], **params)

    async def answer_inline_query(self, results: list[Any], **params: Any) -> Any:
        query = self._update_of("inline_query")
        return await self.call(
            "answerInlineQuery", inline_query_id=query["id"], results=results, **params
        )

    def _update_of(self, kind: str) -> dict[str, Any]:
        if self.event.kind != kind:
            raise RuntimeError(f"this is a {self.event.kind} update, not a {kind}")
        return self.event.raw[kind]


class TelegramConnector(Connector):
    """One Telegram bot, fed by its webhook or by long polling (``getUpdates``)."""

    platform = "telegram"
    display_name = "Telegram"
    options = {
        "access_token": REQUIRED,
        "secret_token": None,
        "origin": DEFAULT_ORIGIN,
        "poll_timeout": 30.0,
    }
    env_names = {"access_token": "TELEGRAM_ACCESS_TOKEN"}
    #: Telegram re-sends after about a minute and holds the chat's later updates meanwhile.
    default_deadline = 20.0
    can_poll = True
    admin_class = TelegramAdmin

    def __init__(
        self,
        *,
        path: str,
        initial_state: Mapping[str, Any],
        access_token: str,
        secret_token: str | None = None,
        origin: str = DEFAULT_ORIGIN,
        poll_timeout: float = 30.0,
        channel: str | None = None,
    ) -> None:
        super().__init__(path=path, initial_state=initial_state, channel=channel)
        #: Seconds each ``getUpdates`` long poll waits for an update (``--polling``).
        self.poll_timeout = poll_timeout
        self.access_token = access_token
        self.secret_token = secret_token
        self.origin = origin
        self.client: TelegramClient | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        self.client = TelegramClient(http, self.access_token, self.origin, observe=self.observe)

    async def check_token(self) -> str | None:
        assert self.client is not None, "start() binds the client first"
        me = await self.client.get_me()
        username = me.get("username") if isinstance(me, dict) else None
        return f"@{username}" if username else "a Telegram bot"

    # --- long polling (server/polling.py drives these) ---------------------------

    @property
    def poll_identity(self) -> str:
        """The bot, not the channel: one poller per bot token may run at a time."""
        bot_id = self.access_token.partition(":")[0]
        if not bot_id.isdigit():
            bot_id = hashlib.sha256(self.access_token.encode()).hexdigest()[:16]
        return f"telegram-bot:{bot_id}"

    async def fetch_updates(
        self, offset: int | None, poll_seconds: float, limit: int
    ) -> list[tuple[int, list[Event]]]:
        """One ``getUpdates`` long poll: ``(update_id, its events)`` in Telegram's order."""
        if self.client is None:
            raise RuntimeError("Telegram client is not started")
        updates = await self.client.get_updates(
            offset=offset,
            poll_seconds=poll_seconds,
            limit=limit,
            allowed_updates=list(UPDATE_KINDS),
        )
        fetched: list[tuple[int, list[Event]]] = []
        for update in updates if isinstance(updates, list) else []:
            update_id = update.get("update_id") if isinstance(update, dict) else None
            if not isinstance(update_id, int):
                logger.warning("ignoring an update without update_id: %.200r", update)
                continue
            try:
                fetched.append((update_id, self.parse(update)))
            except BadRequest:
                logger.warning("ignoring a malformed update %s", update_id)
                fetched.append((update_id, []))
        return fetched

    def explain_poll_error(self, error: Exception) -> str | None:
        """One line for a refusal a person must act on, or ``None`` for a passing failure."""
        if isinstance(error, PlatformApiError) and error.status == 409:
            return (
                f"channel {self.channel!r}: Telegram refused getUpdates (409 Conflict): a webhook"
                " was set meanwhile, or another process polls this bot; only one poller per bot"
                f" token can run ({error.reason})"
            )
        if isinstance(error, PlatformApiError) and error.status in (401, 404):
            return (
                f"channel {self.channel!r}: Telegram refused the bot token"
                f" ({error.status}: {error.reason}); check its access_token"
            )
        return None

    def verify(self, headers: Mapping[str, str], body: bytes) -> str | None:
        if not self.secret_token:
            return None
        given, duplicated = single_header(headers, "x-telegram-bot-api-secret-token")
        if duplicated:
            return duplicated
        if given is None:
            return "missing X-Telegram-Bot-Api-Secret-Token header"
        if not hmac.compare_digest(given.encode(), self.secret_token.encode()):
            return "X-Telegram-Bot-Api-Secret-Token does not match"
        return None

    def parse(self, body: dict[str, Any]) -> list[Event]:
        update_id = body.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            raise BadRequest("a Telegram update has an integer 'update_id'")
        for kind in UPDATE_KINDS:
            if isinstance(body.get(kind), dict):
                event = TelegramEvent(body, kind)
                self._check_copied(event)
                return [event]
        kinds = [key for key in body if key != "update_id"][:5]
        logger.info("ignoring Telegram update %s of unknown kind %.80r", update_id, kinds)
        return []

    def _check_copied(self, event: TelegramEvent) -> None:
        """Refuse (400), before the bot runs, what fill_session would copy but no store keep."""
        copied = {
            "from": event.sender,
            "chat": event.chat,
            "voter_chat": _dict(event.update.get("voter_chat")),
        }
        for name, value in copied.items():
            if value is not None:
                check_copied(value, f"{event.kind}.{name}")

    def session_key(self, event: Event) -> str | None:
        chat_id = self._chat_id(event)
        return None if chat_id is None else self.scoped(f"telegram:{chat_id}")

    def _chat_id(self, event: Event) -> int | None:
        assert isinstance(event, TelegramEvent)
        chat = event.chat
        if chat is not None:
            return _id(chat)
        voter_chat = _dict(event.update.get("voter_chat"))
        if event.kind == "poll_answer" and voter_chat:
            return _id(voter_chat)
        sender = event.sender
        return _id(sender) if sender is not None else None

    def fill_session(self, session: Session, event: Event) -> None:
        assert isinstance(event, TelegramEvent)
        sender = event.sender
        if sender is not None:
            session.user = sender
        chat = event.chat
        if chat is None and event.kind == "poll_answer":
            # An anonymous vote: the session is the voting chat's (see _chat_id).
            chat = _dict(event.update.get("voter_chat"))
        if chat is None:
            return
        if chat.get("type") in ("group", "supergroup"):
            session.group = chat
        elif chat.get("type") == "channel":
            session.channel = chat

    def create_context(self, event: Event, session: Session | None) -> TelegramContext:
        assert isinstance(event, TelegramEvent)
        return TelegramContext(
            event, session, self.initial_state, self.client, self._chat_id(event)
        )

    def conversation_context(self, session: Session) -> TelegramContext:
        """Sends go to the chat named by the session id (``telegram:<chat id>``)."""
        key = session.id.partition(":")[2]
        try:
            chat_id = int(key)
        except ValueError:
            raise ValueError(f"{session.id!r} names no Telegram chat") from None
        raw = {"update_id": 0, "conversation": {"chat": {"id": chat_id}}}
        context = self.create_context(TelegramEvent(raw, "conversation"), session)
        context.chat_id = chat_id  # the event names no chat: the session id does
        return context


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _id(obj: dict[str, Any]) -> int | None:
    value = obj.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None
