"""A thin client for the LINE Messaging API calls this project makes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import aiohttp

from bottender.connectors.api import (
    ApiResponse,
    PlatformApiError,
    Sleep,
    backoff,
    open_stream,
    request_json,
)

logger = logging.getLogger("bottender.line")

DEFAULT_ORIGIN = "https://api.line.me"
#: Namespace of the push retry keys derived from webhook event ids (uuid5).
RETRY_KEY_NAMESPACE = uuid.UUID("6f1d3c1e-6c55-4d8e-9a49-0f3c5d1b2a7e")
#: LINE serves message content (what users sent) from a host of its own.
DEFAULT_DATA_ORIGIN = "https://api-data.line.me"
#: Chunks of downloaded content, as they are handed on.
CHUNK_SIZE = 64 * 1024
#: LINE accepts at most this many messages in one reply or push call.
MAX_MESSAGES_PER_CALL = 5


class LineApiError(PlatformApiError):
    def __init__(self, status: int, message: str, body: Any = None, method: str = "") -> None:
        super().__init__("LINE", status, message, body, method)


def _retry_after(response: ApiResponse, attempt: int) -> float | None:
    if response.status == 429 or response.status >= 500:
        return backoff(attempt)
    return None


def _retry_refused_only(response: ApiResponse, attempt: int) -> float | None:
    """For calls LINE offers no retry key for (reply): a 5xx may have been delivered.

    LINE's guide says a message may reach the user although the call answered
    5xx; retrying a reply would then send it twice. A 429 was not accepted, so
    it is safe to try again.
    """
    return backoff(attempt) if response.status == 429 else None


class LineClient:
    """LINE calls, retried on 429 and 5xx with jittered exponential backoff.

    ``sleep`` is how the client waits between retries; tests pass one that
    records the waits instead of spending them.

    Message content comes from ``data_origin``: LINE's api-data host when
    ``origin`` is LINE's own, else ``origin`` itself (a proxy or a test
    double standing in for LINE serves both).
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        access_token: str,
        origin: str = DEFAULT_ORIGIN,
        *,
        data_origin: str | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._http = http
        self._origin = origin.rstrip("/")
        if data_origin is None:
            data_origin = DEFAULT_DATA_ORIGIN if self._origin == DEFAULT_ORIGIN else self._origin
        self._data_origin = data_origin.rstrip("/")
        self._token = access_token
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._sleep = sleep

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        retry_after: Callable[[ApiResponse, int], float | None] = _retry_after,
    ) -> Any:
        """Call ``{origin}{path}``; raise :class:`LineApiError` with LINE's reason on failure."""
        response = await request_json(
            self._http,
            method,
            f"{self._origin}{path}",
            json=body,
            headers={**self._headers, **(headers or {})},
            retry_after=retry_after,
            sleep=self._sleep,
            platform="LINE",
            secrets=(self._token,),
        )
        if response.status >= 400:
            raise _refused(response, f"{method} {path}")
        return response.body

    async def reply(self, reply_token: str, messages: list[dict[str, Any]]) -> Any:
        return await self.call(
            "POST",
            "/v2/bot/message/reply",
            {"replyToken": reply_token, "messages": messages},
            retry_after=_retry_refused_only,
        )

    async def push(
        self, to: str, messages: list[dict[str, Any]], *, retry_key: str | None = None
    ) -> Any:
        """Push; LINE accepts one push per ``X-Line-Retry-Key`` and drops the others.

        ``retry_key`` (a UUID) makes a push idempotent beyond this call's own
        retries: a replayed event pushing with the same key is dropped by LINE,
        which answers 409, taken here as success (the messages went out before).
        Without it, a fresh key still covers this call's retries.
        """
        key = retry_key or str(uuid.uuid4())
        try:
            return await self.call(
                "POST",
                "/v2/bot/message/push",
                {"to": to, "messages": messages},
                headers={"X-Line-Retry-Key": key},
            )
        except LineApiError as error:
            if error.status != 409:
                raise
            logger.info("LINE push with retry key %s was already accepted: not sent again", key)
            return error.body

    async def get_bot_info(self) -> dict[str, Any]:
        """``userId`` (the ``destination`` of the bot's webhooks), ``displayName``, ..."""
        return await self.call("GET", "/v2/bot/info")

    async def get_profile(
        self, user_id: str, *, group_id: str | None = None, room_id: str | None = None
    ) -> dict[str, Any]:
        """A user's profile; of a group or room member when ``group_id`` / ``room_id`` is given."""
        if group_id:
            path = f"/v2/bot/group/{_q(group_id)}/member/{_q(user_id)}"
        elif room_id:
            path = f"/v2/bot/room/{_q(room_id)}/member/{_q(user_id)}"
        else:
            path = f"/v2/bot/profile/{_q(user_id)}"
        return await self.call("GET", path)

    async def leave(self, kind: str, chat_id: str) -> Any:
        """Leave a group (``kind="group"``) or a room (``kind="room"``)."""
        return await self.call("POST", f"/v2/bot/{kind}/{_q(chat_id)}/leave")

    async def show_loading_animation(self, chat_id: str, seconds: int = 5) -> Any:
        return await self.call(
            "POST", "/v2/bot/chat/loading/start", {"chatId": chat_id, "loadingSeconds": seconds}
        )

    def _content(self, message_id: str) -> Any:
        path = f"/v2/bot/message/{_q(message_id)}/content"
        return open_stream(
            self._http,
            f"{self._data_origin}{path}",
            headers=self._headers,
            retry_after=_retry_after,
            refused=lambda response: _refused(response, f"GET {path}"),
            sleep=self._sleep,
            platform="LINE",
            secrets=(self._token,),
        )

    async def iter_message_content(
        self, message_id: str, chunk_size: int = CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        """The content of a message a user sent (image, video, audio, file), chunk by chunk."""
        async with self._content(message_id) as response:
            async for chunk in response.content.iter_chunked(chunk_size):
                yield chunk

    async def get_message_content(self, message_id: str) -> bytes:
        """The whole content, read once from the response (no JSON or text decoding)."""
        async with self._content(message_id) as response:
            return await response.read()

    async def get_webhook_endpoint(self) -> dict[str, Any]:
        """``{"endpoint": ..., "active": bool}``: where LINE sends events, and whether it does."""
        return await self.call("GET", "/v2/bot/channel/webhook/endpoint")

    async def set_webhook_endpoint(self, endpoint: str) -> Any:
        return await self.call("PUT", "/v2/bot/channel/webhook/endpoint", {"endpoint": endpoint})

    async def test_webhook(self, endpoint: str | None = None) -> dict[str, Any]:
        """Ask LINE to send a test event; ``success``, ``statusCode``, ``reason``, ``detail``."""
        body = {"endpoint": endpoint} if endpoint else {}
        return await self.call("POST", "/v2/bot/channel/webhook/test", body)


def is_reply_token_refused(exc: LineApiError) -> bool:
    """LINE refused the reply token itself (expired, already used), not the messages.

    Only then is a push of the same messages right: a 400 for an invalid
    message would be refused again, and pushes count against the quota.
    """
    return exc.status == 400 and "reply token" in exc.reason.lower()


def _q(segment: str) -> str:
    return quote(str(segment), safe="")


def _refused(response: ApiResponse, method: str) -> LineApiError:
    return LineApiError(response.status, _reason(response.body), response.body, method)


def _reason(body: Any) -> str:
    if isinstance(body, dict):
        message = str(body.get("message") or "unknown error")
        details = body.get("details") or []
        extra = "; ".join(
            f"{d.get('property', '')}: {d.get('message', '')}".strip(": ")
            for d in details
            if isinstance(d, dict)
        )
        return f"{message} ({extra})" if extra else message
    return str(body or "no response body")


def push_retry_key(webhook_event_id: str | None, position: int) -> str | None:
    """The retry key of an event's ``position``-th push call: the same on every replay.

    A UUID (LINE requires one) derived from the event's ``webhookEventId``;
    ``None`` for an event without one (a fresh key is drawn per call).
    """
    if not webhook_event_id:
        return None
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, f"{webhook_event_id}:{position}"))
