"""A thin client for the Telegram Bot API: ``{origin}/bot{token}/{method}``."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from bottender.connectors.api import ApiResponse, PlatformApiError, Sleep, request_json

DEFAULT_ORIGIN = "https://api.telegram.org"
#: Seconds a long poll's HTTP call may outlast its ``timeout`` before it counts as lost.
POLL_MARGIN_SECONDS = 10.0


class TelegramApiError(PlatformApiError):
    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__("Telegram", status, message, body)


def _retry_after(response: ApiResponse, attempt: int) -> float | None:
    """Telegram says how long to wait in ``parameters.retry_after``; honour it."""
    if response.status != 429 or not isinstance(response.body, dict):
        return None
    parameters = response.body.get("parameters") or {}
    wait = parameters.get("retry_after")
    return float(wait) if isinstance(wait, int | float) else 1.0


class TelegramClient:
    """Bot API calls, retried after a 429 for as long as Telegram's ``retry_after`` says.

    The token is part of every URL, so it is handed to :func:`request_json` as
    a secret to scrub from transport errors. ``sleep`` is injectable for tests.
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
        self._token = access_token
        self._base = f"{origin.rstrip('/')}/bot{access_token}/"
        self._sleep = sleep

    async def call(self, method: str, **params: Any) -> Any:
        """Call a Bot API method; return its ``result`` or raise with Telegram's description."""
        response = await request_json(
            self._http,
            "POST",
            self._base + method,
            json=params,
            retry_after=_retry_after,
            sleep=self._sleep,
            platform="Telegram",
            secrets=(self._token,),
        )
        return self._result(response)

    def _result(self, response: ApiResponse) -> Any:
        body = response.body
        if isinstance(body, dict) and body.get("ok") is True:
            return body.get("result")
        if isinstance(body, dict):
            reason = str(body.get("description") or "unknown error")
        else:
            reason = f"unexpected response: {str(body)[:200]}"
        raise TelegramApiError(response.status, reason, body)

    async def get_updates(
        self,
        *,
        offset: int | None,
        poll_seconds: float,
        limit: int,
        allowed_updates: list[str],
    ) -> Any:
        """A long poll: the HTTP call may last ``poll_seconds``, plus a margin."""
        params: dict[str, Any] = {
            "timeout": poll_seconds,
            "limit": limit,
            "allowed_updates": allowed_updates,
        }
        if offset is not None:
            params["offset"] = offset
        response = await request_json(
            self._http,
            "POST",
            self._base + "getUpdates",
            json=params,
            retry_after=_retry_after,
            sleep=self._sleep,
            platform="Telegram",
            secrets=(self._token,),
            http_timeout=aiohttp.ClientTimeout(total=poll_seconds + POLL_MARGIN_SECONDS, connect=5),
        )
        return self._result(response)

    async def send_message(self, chat_id: int | str, text: str, **options: Any) -> Any:
        return await self.call("sendMessage", chat_id=chat_id, text=text, **options)

    async def set_webhook(
        self,
        url: str,
        *,
        secret_token: str | None = None,
        allowed_updates: list[str] | None = None,
        drop_pending_updates: bool = False,
    ) -> Any:
        params: dict[str, Any] = {"url": url}
        if secret_token:
            params["secret_token"] = secret_token
        if allowed_updates is not None:
            params["allowed_updates"] = allowed_updates
        if drop_pending_updates:
            params["drop_pending_updates"] = True
        return await self.call("setWebhook", **params)

    async def get_webhook_info(self) -> dict[str, Any]:
        return await self.call("getWebhookInfo")

    async def delete_webhook(self, *, drop_pending_updates: bool = False) -> Any:
        params = {"drop_pending_updates": True} if drop_pending_updates else {}
        return await self.call("deleteWebhook", **params)
