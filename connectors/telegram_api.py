"""A thin client for the Telegram Bot API: ``{origin}/bot{token}/{method}``."""

from __future__ import annotations

import asyncio
import os
from pathlib import PurePath
from typing import Any

import aiohttp
import orjson

from bottender.connectors.api import (
    ApiResponse,
    FormFactory,
    Observer,
    PlatformApiError,
    Sleep,
    request_json,
)
from bottender.connectors.base import sdk_plain

DEFAULT_ORIGIN = "https://api.telegram.org"
#: Seconds a long poll's HTTP call may outlast its ``timeout`` before it counts as lost.
POLL_MARGIN_SECONDS = 10.0


class TelegramApiError(PlatformApiError):
    def __init__(self, status: int, message: str, body: Any = None, method: str = "") -> None:
        super().__init__("Telegram", status, message, body, method)


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
        observe: Observer | None = None,
    ) -> None:
        self._http = http
        self._observe = observe
        self._token = access_token
        self._base = f"{origin.rstrip('/')}/bot{access_token}/"
        self._sleep = sleep

    async def call(self, method: str, **params: Any) -> Any:
        """Call a Bot API method; return its ``result`` or raise with Telegram's description.

        A parameter that is ``bytes``, a ``pathlib.Path`` or a binary file
        object is a file to upload: the call then goes as ``multipart/form-data``.
        """
        form: FormFactory | None = None
        for value in params.values():
            if not isinstance(value, _NOT_FILES) and is_upload(value):
                form = multipart(params)
                break
        response = await request_json(
            self._http,
            "POST",
            self._base + method,
            json=None if form else params,
            form=form,
            retry_after=_retry_after,
            sleep=self._sleep,
            platform="Telegram",
            secrets=(self._token,),
            observe=self._observe,
            label=method,
        )
        return self._result(response, method)

    def _result(self, response: ApiResponse, method: str) -> Any:
        body = response.body
        if isinstance(body, dict) and body.get("ok") is True:
            return body.get("result")
        if isinstance(body, dict):
            reason = str(body.get("description") or "unknown error")
        else:
            reason = f"unexpected response: {str(body)[:200]}"
        raise TelegramApiError(response.status, reason, body, method)

    async def get_me(self) -> dict[str, Any]:
        """The bot's own user (``getMe``): the cheapest call that proves the token works."""
        return await self.call("getMe")

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
            observe=self._observe,
            label="getUpdates",
            http_timeout=aiohttp.ClientTimeout(total=poll_seconds + POLL_MARGIN_SECONDS, connect=5),
        )
        return self._result(response, "getUpdates")

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


#: File parameters the Bot API takes only as ``attach://<part>`` naming another form part.
ATTACHED_FILES = frozenset({"thumbnail", "cover"})
#: Parameter values that are never files; checked first, so plain calls pay one isinstance.
_NOT_FILES = (str, int, float, dict, list, type(None))


def is_upload(value: Any) -> bool:
    """``bytes``, a ``Path`` or a binary file object: content to upload, not a URL or file_id."""
    return isinstance(value, bytes | bytearray | memoryview | PurePath) or callable(
        getattr(value, "read", None)
    )


def _file(value: Any, name: str) -> tuple[Any, str]:
    """(what to upload, its file name): a Path is opened by each attempt, the rest read now.

    aiogram's ``BufferedInputFile`` (``data``) and ``FSInputFile`` (``path``)
    are taken for what they hold, under their ``filename``.
    """
    if isinstance(value, PurePath):
        return value, value.name
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value), name
    filename = getattr(value, "filename", None)
    if isinstance(getattr(value, "data", None), bytes):
        return value.data, filename or name
    path = getattr(value, "path", None)
    if isinstance(path, str | PurePath):
        path = PurePath(path)
        return path, filename or path.name
    return value.read(), os.path.basename(str(getattr(value, "name", "") or "")) or name


def multipart(params: dict[str, Any]) -> FormFactory:
    """A builder of the call's ``multipart/form-data`` body, fresh for each attempt.

    Other parameters are form fields: strings as they are, everything else
    (numbers, booleans, ``reply_markup`` and other objects, SDK objects
    included) JSON-encoded, as the Bot API reads them. A file object is read
    once, here, from its current position; it is not closed (it is the
    caller's). A ``Path`` is opened and streamed by each attempt. A new
    ``thumbnail`` or ``cover`` goes in a part of its own, the parameter naming
    it (``attach://thumbnail_file``), as the Bot API requires for those.
    """
    fields: list[tuple[str, Any, str | None]] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, str):
            fields.append((name, value, None))
        elif is_upload(value):
            part = name
            if name in ATTACHED_FILES:
                part = f"{name}_file"
                fields.append((name, f"attach://{part}", None))
            fields.append((part, *_file(value, name)))
        else:
            fields.append((name, orjson.dumps(value, default=sdk_plain).decode(), None))

    def build() -> aiohttp.FormData:
        form = aiohttp.FormData(quote_fields=False)
        for name, value, filename in fields:
            if filename is None:
                form.add_field(name, value)
                continue
            content = open(value, "rb") if isinstance(value, PurePath) else value
            form.add_field(
                name, content, filename=filename, content_type="application/octet-stream"
            )
        return form

    return build
