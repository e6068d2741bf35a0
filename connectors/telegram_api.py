"""A thin client for the Telegram Bot API: ``{origin}/bot{token}/{method}``."""

from __future__ import annotations

from typing import Any

import aiohttp

from connectors.api import ApiResponse, PlatformApiError, request_json

DEFAULT_ORIGIN = "https://api.telegram.org"


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
    def __init__(
        self, http: aiohttp.ClientSession, access_token: str, origin: str = DEFAULT_ORIGIN
    ) -> None:
        self._http = http
        self._base = f"{origin.rstrip('/')}/bot{access_token}/"

    async def call(self, method: str, **params: Any) -> Any:
        """Call a Bot API method; return its ``result`` or raise with Telegram's description."""
        response = await request_json(
            self._http, "POST", self._base + method, json=params, retry_after=_retry_after
        )
        body = response.body
        if isinstance(body, dict) and body.get("ok") is True:
            return body.get("result")
        if isinstance(body, dict):
            reason = str(body.get("description") or "unknown error")
        else:
            reason = f"unexpected response: {str(body)[:200]}"
        raise TelegramApiError(response.status, reason, body)

    async def send_message(self, chat_id: int | str, text: str, **options: Any) -> Any:
        return await self.call("sendMessage", chat_id=chat_id, text=text, **options)
