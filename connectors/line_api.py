"""A thin client for the LINE Messaging API calls this project makes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from bottender.connectors.api import ApiResponse, PlatformApiError, Sleep, backoff, request_json

DEFAULT_ORIGIN = "https://api.line.me"
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

    async def push(self, to: str, messages: list[dict[str, Any]]) -> Any:
        # The retry key makes LINE accept a retried push once only.
        return await self.call(
            "POST",
            "/v2/bot/message/push",
            {"to": to, "messages": messages},
            headers={"X-Line-Retry-Key": str(uuid.uuid4())},
        )

    async def get_bot_info(self) -> dict[str, Any]:
        """``userId`` (the ``destination`` of the bot's webhooks), ``displayName``, ..."""
        return await self.call("GET", "/v2/bot/info")

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
