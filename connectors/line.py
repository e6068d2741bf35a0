"""LINE: webhook signature, events, session keys and the buffered reply context."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from bottender.connectors.base import (
    REQUIRED,
    BadRequest,
    Connector,
    Context,
    Event,
    WrongRecipient,
)
from bottender.connectors.line_admin import LineAdmin
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


class LineEvent(Event):
    platform = "line"
    __slots__ = ()

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

    @property
    def text(self) -> str | None:
        message = self.message
        if message is not None and message.get("type") == "text":
            return message.get("text")
        return None

    @property
    def is_postback(self) -> bool:
        return self.type == "postback"

    @property
    def postback_data(self) -> str | None:
        postback = self.raw.get("postback")
        return postback.get("data") if self.is_postback and isinstance(postback, dict) else None

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

    async def start(self, http: aiohttp.ClientSession) -> None:
        self.client = LineClient(http, self.access_token, self.origin)

    def serving(self) -> None:
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
            self._learn_bot_user_id()
            return
        if isinstance(destination, str) and destination != self.bot_user_id:
            raise WrongRecipient(
                f"destination {destination} is not the bot of channel {self.channel!r}"
            )

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
        self.check_destination(body)
        parsed: list[Event] = []
        for raw in events:
            if not isinstance(raw, dict):
                raise BadRequest("each LINE event is a JSON object")
            if raw.get("type") not in KNOWN_EVENT_TYPES:
                logger.info("ignoring LINE event of unknown type %r", raw.get("type"))
                continue
            if raw.get("replyToken") in VERIFY_REPLY_TOKENS:
                continue
            parsed.append(LineEvent(raw))
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

    def create_context(self, event: Event, session: Session | None) -> LineContext:
        assert isinstance(event, LineEvent)
        return LineContext(
            event,
            session,
            self.initial_state,
            self.client,
            reply_fallback_to_push=self.reply_fallback_to_push,
        )
