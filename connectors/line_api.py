"""A thin client for the LINE Messaging API calls this project makes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from bottender.connectors.api import ApiResponse, PlatformApiError, Sleep, backoff, request_json

logger = logging.getLogger("bottender.line")

DEFAULT_ORIGIN = "https://api.line.me"
#: Namespace of the push retry keys derived from webhook event ids (uuid5).
RETRY_KEY_NAMESPACE = uuid.UUID("6f1d3c1e-6c55-4d8e-9a49-0f3c5d1b2a7e")
#: LINE accepts at most this many messages in one reply or push call.
MAX_MESSAGES_PER_CALL = 5


class LineApiError(PlatformApiError):
    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__("LINE", status, message, body)


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
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        access_token: str,
        origin: str = DEFAULT_ORIGIN,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._http = http
        self._origin = origin.rstrip("/")
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
            raise LineApiError(response.status, _reason(response.body), response.body)
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
