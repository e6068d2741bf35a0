"""LINE: webhook signature, events, session keys and the buffered reply context."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson

from bottender.connectors.base import (
    REQUIRED,
    BadRequest,
    Connector,
    Context,
    Event,
    WrongRecipient,
    plain,
    sdk_plain,
    single_header,
    text_field,
)
from bottender.connectors.line_admin import LineAdmin
from bottender.connectors.line_api import (
    DEFAULT_ORIGIN,
    MAX_MESSAGES_PER_CALL,
    LineApiError,
    LineClient,
    is_reply_token_refused,
    push_retry_key,
)
from bottender.sessions.session import Session

logger = logging.getLogger("bottender.line")

#: Webhook event types of the Messaging API; others are acknowledged and ignored.
KNOWN_EVENT_TYPES = frozenset(
    {
        "message",
        "unsend",
        "follow",
        "unfollow",
        "join",
        "leave",
        "memberJoined",
        "memberLeft",
        "postback",
        "videoPlayComplete",
        "beacon",
        "accountLink",
        "things",
        "membership",
        "module",
        "activated",
        "deactivated",
        "botSuspended",
        "botResumed",
    }
)
#: Reply tokens of the console's "Verify" request: nothing to run, nothing to answer.
VERIFY_REPLY_TOKENS = frozenset({"0" * 32, "f" * 32})
#: Which id of ``source`` names the conversation, by source type.
SOURCE_ID_FIELDS = {"user": "userId", "group": "groupId", "room": "roomId"}


#: The Python names of LINE's event types (``is_member_joined``, ``line.member_joined``).
EVENT_TYPES = {
    "message": "message",
    "follow": "follow",
    "unfollow": "unfollow",
    "join": "join",
    "leave": "leave",
    "member_joined": "memberJoined",
    "member_left": "memberLeft",
    "postback": "postback",
    "beacon": "beacon",
    "account_link": "accountLink",
    "unsend": "unsend",
    "video_play_complete": "videoPlayComplete",
}
#: Fields of a location message that :attr:`LineEvent.location` hands out.
LOCATION_FIELDS = ("latitude", "longitude", "title", "address")


class LineEvent(Event):
    """One event of a LINE webhook body; ``destination`` is the body's (the bot's user id)."""

    platform = "line"
    __slots__ = ("destination",)

    def __init__(self, raw: dict[str, Any], destination: str | None = None) -> None:
        super().__init__(raw)
        self.destination = destination

    @property
    def type(self) -> str:
        return self.raw.get("type", "")

    @property
    def source(self) -> dict[str, Any]:
        source = self.raw.get("source")
        return source if isinstance(source, dict) else {}

    @property
    def message(self) -> dict[str, Any] | None:
        message = self.raw.get("message")
        return message if self.type == "message" and isinstance(message, dict) else None

    def _message_type(self) -> str | None:
        message = self.message
        return message.get("type") if message is not None else None

    @property
    def text(self) -> str | None:
        message = self.message
        if message is not None and message.get("type") == "text":
            text = message.get("text")
            return text if isinstance(text, str) else None
        return None

    @property
    def is_image(self) -> bool:
        return self._message_type() == "image"

    @property
    def is_video(self) -> bool:
        return self._message_type() == "video"

    @property
    def is_audio(self) -> bool:
        return self._message_type() == "audio"

    @property
    def is_file(self) -> bool:
        return self._message_type() == "file"

    @property
    def is_sticker(self) -> bool:
        return self._message_type() == "sticker"

    @property
    def location(self) -> dict[str, Any] | None:
        message = self.message
        if message is None or message.get("type") != "location":
            return None
        return {field: message[field] for field in LOCATION_FIELDS if field in message}

    @property
    def is_follow(self) -> bool:
        return self.type == "follow"

    @property
    def is_unfollow(self) -> bool:
        return self.type == "unfollow"

    @property
    def is_join(self) -> bool:
        return self.type == "join"

    @property
    def is_leave(self) -> bool:
        return self.type == "leave"

    @property
    def is_member_joined(self) -> bool:
        return self.type == "memberJoined"

    @property
    def is_member_left(self) -> bool:
        return self.type == "memberLeft"

    @property
    def is_postback(self) -> bool:
        return self.type == "postback"

    @property
    def is_beacon(self) -> bool:
        return self.type == "beacon"

    @property
    def is_account_link(self) -> bool:
        return self.type == "accountLink"

    @property
    def is_unsend(self) -> bool:
        return self.type == "unsend"

    @property
    def is_video_play_complete(self) -> bool:
        return self.type == "videoPlayComplete"

    def _postback(self) -> dict[str, Any] | None:
        postback = self.raw.get("postback")
        return postback if self.is_postback and isinstance(postback, dict) else None

    @property
    def payload(self) -> str | None:
        """The postback's ``data``."""
        postback = self._postback()
        data = postback.get("data") if postback is not None else None
        return data if isinstance(data, str) else None

    #: The name README documented before ``payload``; kept as an alias.
    postback_data = payload

    @property
    def postback_params(self) -> dict[str, Any] | None:
        """What a date/time picker chose (``{"date": "2026-12-02"}``), or ``None``."""
        postback = self._postback()
        params = postback.get("params") if postback is not None else None
        return params if isinstance(params, dict) else None

    @property
    def reply_token(self) -> str | None:
        return self.raw.get("replyToken")

    @property
    def is_redelivery(self) -> bool:
        context = self.raw.get("deliveryContext") or {}
        return bool(context.get("isRedelivery"))

    @property
    def delivery_id(self) -> str | None:
        event_id = self.raw.get("webhookEventId")
        return f"line:{event_id}" if event_id else None


class LineContext(Context):
    """Sends are buffered and flushed after the bot returns.

    LINE's reply token is single-use and carries at most five messages, so the
    first five messages go out in one reply call and the rest are pushed to the
    conversation, five per call; nothing is dropped.
    """

    platform = "line"

    def __init__(
        self,
        event: LineEvent,
        session: Session | None,
        initial_state: Mapping[str, Any],
        client: LineClient | None,
        *,
        reply_fallback_to_push: bool = False,
    ) -> None:
        super().__init__(event, session, initial_state)
        self.event: LineEvent = event
        self.client = client
        self._replies: list[dict[str, Any]] = []
        self._pushes: list[dict[str, Any]] = []
        self._reply_fallback_to_push = reply_fallback_to_push
        #: Push calls made so far for this event: the next one's position in its retry key.
        self._pushed = 0

    async def send_text(self, text: str, *, quick_reply: Any = None, **fields: Any) -> None:
        """Buffer a text message: replied when the event has a reply token, else pushed.

        ``fields`` are the text message's other fields (``emojis``, ``quoteToken``,
        ``sender``); ``quick_reply`` a list of LINE actions shown under it.
        """
        message = {"type": "text", "text": text, **fields}
        if quick_reply is not None:
            message["quickReply"] = quick_reply_of(quick_reply)
        (self._replies if self.event.reply_token else self._pushes).append(message)

    async def reply_text(self, text: str, *, quick_reply: Any = None, **fields: Any) -> None:
        """Buffer a text for the reply (pushed if the event has no reply token)."""
        self._replies.append(
            _with_quick_reply({"type": "text", "text": text, **fields}, quick_reply)
        )

    async def push_text(self, text: str, *, quick_reply: Any = None, **fields: Any) -> None:
        """Buffer a text to push, even when the event could be replied to."""
        self._pushes.append(
            _with_quick_reply({"type": "text", "text": text, **fields}, quick_reply)
        )

    async def send(self, *messages: Any) -> None:
        """Buffer message objects of any type (dicts or line-bot-sdk v3 messages)."""
        target = self._replies if self.event.reply_token else self._pushes
        target.extend([_message(m) for m in messages])

    async def reply(self, *messages: Any) -> None:
        """Buffer message objects for the reply."""
        self._replies.extend([_message(m) for m in messages])

    async def push(self, *messages: Any) -> None:
        """Buffer message objects to push to the conversation."""
        self._pushes.extend([_message(m) for m in messages])

    async def _send_one(self, message: dict[str, Any], quick_reply: Any) -> None:
        await self.send(_with_quick_reply(message, quick_reply))

    async def send_image(
        self, url: str, *, preview_url: str | None = None, quick_reply: Any = None
    ) -> None:
        """An image message; the preview is the image itself unless given."""
        message = {
            "type": "image",
            "originalContentUrl": url,
            "previewImageUrl": preview_url or url,
        }
        await self._send_one(message, quick_reply)

    async def send_video(self, url: str, *, preview_url: str, quick_reply: Any = None) -> None:
        message = {"type": "video", "originalContentUrl": url, "previewImageUrl": preview_url}
        await self._send_one(message, quick_reply)

    async def send_audio(self, url: str, *, duration_ms: int, quick_reply: Any = None) -> None:
        message = {"type": "audio", "originalContentUrl": url, "duration": duration_ms}
        await self._send_one(message, quick_reply)

    async def send_location(
        self,
        *,
        title: str,
        address: str,
        latitude: float,
        longitude: float,
        quick_reply: Any = None,
    ) -> None:
        message = {
            "type": "location",
            "title": title,
            "address": address,
            "latitude": latitude,
            "longitude": longitude,
        }
        await self._send_one(message, quick_reply)

    async def send_sticker(
        self, package_id: str | int, sticker_id: str | int, *, quick_reply: Any = None
    ) -> None:
        message = {"type": "sticker", "packageId": str(package_id), "stickerId": str(sticker_id)}
        await self._send_one(message, quick_reply)

    async def send_flex(self, alt_text: str, contents: Any, *, quick_reply: Any = None) -> None:
        """A flex message; ``contents`` is a bubble or carousel (dict or SDK object)."""
        message = {"type": "flex", "altText": alt_text, "contents": plain(contents)}
        await self._send_one(message, quick_reply)

    async def send_template(self, alt_text: str, template: Any, *, quick_reply: Any = None) -> None:
        """A template message of any kind (``template`` is its ``template`` object)."""
        message = {"type": "template", "altText": alt_text, "template": plain(template)}
        await self._send_one(message, quick_reply)

    async def send_buttons_template(
        self,
        alt_text: str,
        *,
        text: str,
        actions: list[Any],
        title: str | None = None,
        thumbnail_url: str | None = None,
        quick_reply: Any = None,
        **fields: Any,
    ) -> None:
        """Up to four buttons; ``fields`` are the template's other fields (``defaultAction``...)."""
        template: dict[str, Any] = {"type": "buttons", "text": text, "actions": actions, **fields}
        if title is not None:
            template["title"] = title
        if thumbnail_url is not None:
            template["thumbnailImageUrl"] = thumbnail_url
        await self.send_template(alt_text, template, quick_reply=quick_reply)

    async def send_confirm_template(
        self, alt_text: str, *, text: str, actions: list[Any], quick_reply: Any = None
    ) -> None:
        """Two buttons (yes / no)."""
        template = {"type": "confirm", "text": text, "actions": actions}
        await self.send_template(alt_text, template, quick_reply=quick_reply)

    async def send_carousel_template(
        self, alt_text: str, columns: list[Any], *, quick_reply: Any = None, **fields: Any
    ) -> None:
        """Columns of buttons side by side; ``fields``: ``imageAspectRatio``, ``imageSize``."""
        template = {"type": "carousel", "columns": columns, **fields}
        await self.send_template(alt_text, template, quick_reply=quick_reply)

    # --- calls made at once (not buffered) -------------------------------------------------

    def _client(self) -> LineClient:
        if self.client is None:
            raise RuntimeError("LINE client is not started")
        return self.client

    async def get_user_profile(self) -> dict[str, Any]:
        """The sender's profile (``displayName``, ``userId``, ``pictureUrl``...).

        In a group or room it is the member profile, which LINE gives even for
        users who are not the bot's friends.
        """
        source = self.event.source
        user_id = source.get("userId")
        if not user_id:
            raise RuntimeError("this LINE event names no user to fetch the profile of")
        return await self._client().get_profile(
            user_id, group_id=source.get("groupId"), room_id=source.get("roomId")
        )

    async def get_message_content(self, to: Any = None) -> Any:
        """The content of the image, video, audio or file message of this event.

        Without ``to``: the bytes. With ``to`` (a path, or a binary file object
        open for writing): the content is streamed there chunk by chunk, never
        held whole in memory, and the number of bytes written is returned.
        """
        message = self.event.message
        if message is None or "id" not in message:
            raise RuntimeError("this LINE event has no message to fetch the content of")
        client = self._client()
        if to is None:
            return await client.get_message_content(message["id"])
        if isinstance(to, str | os.PathLike):
            with open(to, "wb") as file:  # noqa: ASYNC230 - chunks are written as they come
                return await _copy(client.iter_message_content(message["id"]), file)
        return await _copy(client.iter_message_content(message["id"]), to)

    async def leave(self) -> Any:
        """Leave the group or room of this event (a one-to-one chat cannot be left)."""
        source = self.event.source
        kind = source.get("type")
        if kind not in ("group", "room") or not source.get(f"{kind}Id"):
            raise RuntimeError("only a group or a room can be left")
        return await self._client().leave(kind, source[f"{kind}Id"])

    async def show_loading_animation(self, seconds: int = 5) -> Any:
        """LINE's typing indicator, for ``seconds`` (5 to 60, a multiple of 5).

        LINE shows it in one-to-one chats only; in a group or room this does nothing.
        """
        if not (isinstance(seconds, int) and 5 <= seconds <= 60 and seconds % 5 == 0):
            raise ValueError(f"seconds must be 5, 10, ... 60, not {seconds!r}")
        source = self.event.source
        if source.get("type") != "user" or not source.get("userId"):
            return None
        return await self._client().show_loading_animation(source["userId"], seconds)

    @property
    def target(self) -> str | None:
        """The id a push goes to: the user, group or room of this conversation."""
        source = self.event.source
        field = SOURCE_ID_FIELDS.get(source.get("type", ""))
        return source.get(field) if field else None

    def discard_pending(self) -> None:
        self._replies, self._pushes = [], []

    async def flush(self) -> None:
        replies, pushes = self._replies, self._pushes
        self._replies, self._pushes = [], []
        if not replies and not pushes:
            return
        if self.client is None:
            raise RuntimeError("LINE client is not started")
        token = self.event.reply_token
        if replies and token:
            first, overflow = replies[:MAX_MESSAGES_PER_CALL], replies[MAX_MESSAGES_PER_CALL:]
            try:
                await self.client.reply(token, first)
            except LineApiError as exc:
                if self.event.is_redelivery and is_reply_token_refused(exc):
                    # Most likely used by this event's first run, whose process died before
                    # writing the session: that reply went out; sending it again would repeat
                    # it. The overflow is pushed again under the same retry keys: LINE drops
                    # what the first run already pushed.
                    logger.warning("reply token of a redelivered event refused: not sent again")
                elif not (self._reply_fallback_to_push and is_reply_token_refused(exc)):
                    raise
                else:
                    logger.warning("reply token refused (%s); pushing instead", exc.reason)
                    overflow = first + overflow
            pushes = overflow + pushes
        elif replies:
            pushes = replies + pushes
        if not pushes:
            return
        to = self.target
        if to is None:
            raise RuntimeError(
                f"cannot push {len(pushes)} LINE message(s): the event names no user, group or room"
            )
        event_id = self.event.raw.get("webhookEventId")
        for position, start in enumerate(range(0, len(pushes), MAX_MESSAGES_PER_CALL)):
            # Keyed by the event and the call's position: a replay's pushes are dropped by LINE.
            await self.client.push(
                to,
                pushes[start : start + MAX_MESSAGES_PER_CALL],
                retry_key=push_retry_key(event_id, self._pushed + position),
            )
        self._pushed += -(-len(pushes) // MAX_MESSAGES_PER_CALL)


def quick_reply_of(actions: Any) -> Any:
    """LINE's ``quickReply`` object for a list of actions (dicts or SDK objects).

    An item that is already a quick-reply button (``{"type": "action", ...}``,
    e.g. with an ``imageUrl``) is kept; a bare action is wrapped in one. A
    whole ``quickReply`` object (a dict with ``items``, or an SDK
    ``QuickReply``) is taken as it is.
    """
    actions = plain(actions)
    if isinstance(actions, dict):
        return actions
    items = []
    for action in actions:
        action = plain(action)
        items.append(
            action if action.get("type") == "action" else {"type": "action", "action": action}
        )
    return {"items": items}


def _with_quick_reply(message: dict[str, Any], quick_reply: Any) -> dict[str, Any]:
    if quick_reply is not None:
        message["quickReply"] = quick_reply_of(quick_reply)
    return message


def _message(message: Any) -> Any:
    """A message object as a private JSON copy, SDK objects (at any depth) converted.

    Done at the call, so a value LINE could never be sent fails where the bot
    wrote it, and changing the dict afterwards does not change what is sent.
    """
    try:
        return orjson.loads(orjson.dumps(message, default=sdk_plain))
    except TypeError as exc:
        raise TypeError(f"a LINE message must be JSON or an SDK object: {exc}") from None


async def _copy(chunks: AsyncIterator[bytes], file: Any) -> int:
    written = 0
    async for chunk in chunks:
        file.write(chunk)
        written += len(chunk)
    return written


class LineConnector(Connector):
    """One LINE channel (a LINE Official Account's Messaging API channel).

    A body whose ``destination`` is not this channel's bot is refused (403):
    its signature checks out, so it comes from a channel sharing this one's
    secret, and replies would go out through the wrong token. The bot's user
    id is the ``bot_user_id`` option, else asked once from GET /v2/bot/info in
    the background at start-up (and again, at most once a minute, while
    unknown); until it is known, bodies are checked by signature only, so an
    unreachable LINE never stops the gateway from starting.
    """

    platform = "line"
    display_name = "LINE"
    options = {
        "access_token": REQUIRED,
        "channel_secret": REQUIRED,
        "origin": DEFAULT_ORIGIN,
        "reply_fallback_to_push": False,
        "bot_user_id": None,
    }
    env_names = {"access_token": "LINE_ACCESS_TOKEN", "channel_secret": "LINE_CHANNEL_SECRET"}
    #: LINE counts a webhook slower than about 2 s as failed.
    default_deadline = 1.0
    admin_class = LineAdmin
    unique_options = ("access_token", "channel_secret")

    def __init__(
        self,
        *,
        path: str,
        initial_state: Mapping[str, Any],
        access_token: str,
        channel_secret: str,
        origin: str = DEFAULT_ORIGIN,
        reply_fallback_to_push: bool = False,
        bot_user_id: str | None = None,
        channel: str | None = None,
    ) -> None:
        super().__init__(path=path, initial_state=initial_state, channel=channel)
        self.access_token = access_token
        self._secret = channel_secret.encode()
        self.origin = origin
        self.reply_fallback_to_push = reply_fallback_to_push
        self.bot_user_id = bot_user_id
        self.client: LineClient | None = None
        self._asked_bot_info_at: float | None = None
        self._bot_info_task: asyncio.Task[None] | None = None
        self._serving = False

    async def start(self, http: aiohttp.ClientSession) -> None:
        self.client = LineClient(http, self.access_token, self.origin, observe=self.observe)

    async def check_token(self) -> str | None:
        assert self.client is not None, "start() binds the client first"
        info = await self.client.get_bot_info()
        name = info.get("displayName") if isinstance(info, dict) else None
        basic_id = info.get("basicId") if isinstance(info, dict) else None
        return " ".join(str(part) for part in (name, basic_id) if part) or "a LINE bot"

    def serving(self) -> None:
        self._serving = True
        self._learn_bot_user_id()

    def _learn_bot_user_id(self) -> None:
        """Ask LINE who this channel's bot is, in the background, at most once a minute."""
        if self.bot_user_id or self.client is None:
            return
        loop = asyncio.get_running_loop()
        if self._asked_bot_info_at is not None and loop.time() - self._asked_bot_info_at < 60:
            return
        self._asked_bot_info_at = loop.time()
        client = self.client

        async def ask() -> None:
            try:
                info = await client.get_bot_info()
            except Exception as exc:  # never fatal: the signature still authenticates bodies
                logger.warning("channel %s: cannot learn the bot's user id: %s", self.channel, exc)
                return
            user_id = info.get("userId") if isinstance(info, dict) else None
            if isinstance(user_id, str) and user_id:
                self.bot_user_id = user_id

        self._bot_info_task = loop.create_task(ask())

    def check_destination(self, body: Mapping[str, Any]) -> None:
        """Refuse a body meant for another bot (see the class docstring)."""
        destination = body.get("destination")
        if self.bot_user_id is None:
            if self._serving:  # asked again, at most once a minute, while unknown
                self._learn_bot_user_id()
            return
        if isinstance(destination, str) and destination != self.bot_user_id:
            raise WrongRecipient(
                f"destination {destination[:40]!r} is not the bot of channel {self.channel!r}"
            )

    def verify(self, headers: Mapping[str, str], body: bytes) -> str | None:
        signature, duplicated = single_header(headers, "x-line-signature")
        if duplicated:
            return duplicated
        if not signature:
            return "missing X-Line-Signature header"
        expected = base64.b64encode(hmac.new(self._secret, body, hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            return "X-Line-Signature does not match the body"
        return None

    def parse(self, body: dict[str, Any]) -> list[Event]:
        events = body.get("events")
        if not isinstance(events, list):
            raise BadRequest("a LINE webhook body has an 'events' list")
        self.check_destination(body)
        destination = body.get("destination")
        if not isinstance(destination, str):
            destination = None
        parsed: list[Event] = []
        for raw in events:
            check_event(raw)
            if raw.get("type") not in KNOWN_EVENT_TYPES:
                logger.info("ignoring LINE event of unknown type %.40r", raw.get("type"))
                continue
            if raw.get("replyToken") in VERIFY_REPLY_TOKENS:
                continue
            parsed.append(LineEvent(raw, destination))
        return parsed

    def session_key(self, event: Event) -> str | None:
        assert isinstance(event, LineEvent)
        source = event.source
        field = SOURCE_ID_FIELDS.get(source.get("type", ""))
        key = source.get(field) if field else None
        return self.scoped(f"line:{key}") if isinstance(key, str) and key else None

    def fill_session(self, session: Session, event: Event) -> None:
        assert isinstance(event, LineEvent)
        source = event.source
        if source.get("userId"):
            session.user = {"id": source["userId"]}
        if source.get("groupId"):
            session.group = {"id": source["groupId"]}
        if source.get("roomId"):
            session.room = {"id": source["roomId"]}

    def mark_replayed(self, event: Event) -> None:
        """A replay from the inbox is a redelivery, as LINE itself marks its own."""
        context = event.raw.get("deliveryContext")
        if not isinstance(context, dict):
            context = event.raw["deliveryContext"] = {}
        context["isRedelivery"] = True

    def create_context(self, event: Event, session: Session | None) -> LineContext:
        assert isinstance(event, LineEvent)
        return LineContext(
            event,
            session,
            self.initial_state,
            self.client,
            reply_fallback_to_push=self.reply_fallback_to_push,
        )

    def conversation_context(self, session: Session) -> LineContext:
        """No reply token: every message is pushed to the session's user, group or room.

        The source comes from what the session recorded, else from the id's
        form (LINE ids start with U for users, C for groups, R for rooms).
        """
        target = session.id.partition(":")[2]
        kinds = {"U": "user", "C": "group", "R": "room"}
        kind = next(
            (k for k, v in (("group", session.group), ("room", session.room)) if v), None
        ) or kinds.get(target[:1], "user")
        source: dict[str, Any] = {"type": kind, SOURCE_ID_FIELDS[kind]: target}
        if session.user and kind != "user":
            source["userId"] = session.user.get("id")
        raw = {"type": "conversation", "mode": "active", "source": source}
        return self.create_context(LineEvent(raw), session)


#: The most characters of an id (user, group, room, event) this connector accepts: LINE's
#: are 33 (ids) and 26 (webhookEventId); the bound keeps a forged one out of session keys.
MAX_ID_LENGTH = 128


def check_event(raw: Any) -> None:
    """Refuse (400) an event whose fields the runtime reads are not of the types LINE sends.

    Only what the gateway itself reads or copies into the session is checked (type,
    replyToken, source and its ids, webhookEventId, deliveryContext, message, postback);
    the rest is the bot's to read from ``event.raw``.
    """
    if not isinstance(raw, dict):
        raise BadRequest("each LINE event is a JSON object")
    text_field(raw, "type", "event", max_length=64)
    text_field(raw, "replyToken", "event", max_length=MAX_ID_LENGTH)
    text_field(raw, "webhookEventId", "event", max_length=MAX_ID_LENGTH)
    for name in ("source", "deliveryContext", "message", "postback"):
        if raw.get(name) is not None and not isinstance(raw[name], dict):
            raise BadRequest(f"event.{name} must be an object")
    source = raw.get("source") or {}
    text_field(source, "type", "event.source", max_length=64)
    for field in SOURCE_ID_FIELDS.values():
        text_field(source, field, "event.source", max_length=MAX_ID_LENGTH)
    message = raw.get("message") or {}
    text_field(message, "type", "event.message", max_length=64)
    text_field(message, "text", "event.message", max_length=1_000_000)
    text_field(raw.get("postback") or {}, "data", "event.postback", max_length=1_000_000)
