"""LINE: webhook signature, events, session keys and the buffered reply context."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from bottender.connectors.base import BadRequest, Connector, Context, Event
from bottender.connectors.line_api import (
    DEFAULT_ORIGIN,
    MAX_MESSAGES_PER_CALL,
    LineApiError,
    LineClient,
    is_reply_token_refused,
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

    async def send_text(self, text: str, **options: Any) -> None:
        """Reply when the event has a reply token, else push to the conversation."""
        self.send({"type": "text", "text": text, **options})

    async def reply_text(self, text: str, **options: Any) -> None:
        self._replies.append({"type": "text", "text": text, **options})

    async def push_text(self, text: str, **options: Any) -> None:
        self._pushes.append({"type": "text", "text": text, **options})

    def send(self, *messages: dict[str, Any]) -> None:
        """Buffer message objects of any type (image, flex, template…)."""
        target = self._replies if self.event.reply_token else self._pushes
        target.extend(messages)

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
                if not (self._reply_fallback_to_push and is_reply_token_refused(exc)):
                    raise
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
        for start in range(0, len(pushes), MAX_MESSAGES_PER_CALL):
            await self.client.push(to, pushes[start : start + MAX_MESSAGES_PER_CALL])


class LineConnector(Connector):
    platform = "line"

    def __init__(
        self,
        *,
        path: str,
        initial_state: Mapping[str, Any],
        access_token: str,
        channel_secret: str,
        origin: str = DEFAULT_ORIGIN,
        reply_fallback_to_push: bool = False,
    ) -> None:
        super().__init__(path=path, initial_state=initial_state)
        self.access_token = access_token
        self._secret = channel_secret.encode()
        self.origin = origin
        self.reply_fallback_to_push = reply_fallback_to_push
        self.client: LineClient | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        self.client = LineClient(http, self.access_token, self.origin)

    def verify(self, headers: Mapping[str, str], body: bytes) -> str | None:
        signature = headers.get("x-line-signature")
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
        destination = body.get("destination")
        if not isinstance(destination, str):
            destination = None
        parsed: list[Event] = []
        for raw in events:
            if not isinstance(raw, dict):
                raise BadRequest("each LINE event is a JSON object")
            if raw.get("type") not in KNOWN_EVENT_TYPES:
                logger.info("ignoring LINE event of unknown type %r", raw.get("type"))
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
        return f"line:{key}" if isinstance(key, str) and key else None

    def fill_session(self, session: Session, event: Event) -> None:
        assert isinstance(event, LineEvent)
        source = event.source
        if source.get("userId"):
            session.user = {"id": source["userId"]}
        if source.get("groupId"):
            session.group = {"id": source["groupId"]}
        if source.get("roomId"):
            session.room = {"id": source["roomId"]}

    def create_context(self, event: Event, session: Session | None) -> LineContext:
        assert isinstance(event, LineEvent)
        return LineContext(
            event,
            session,
            self.initial_state,
            self.client,
            reply_fallback_to_push=self.reply_fallback_to_push,
        )
