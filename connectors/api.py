"""What the platform API clients share: the error type and bounded retries.

Each platform's client knows its own URLs and JSON; this module only knows
that a call may be refused (429) or fail on the platform's side (5xx), and
that such calls are worth a few bounded retries before the bot hears of it.

It also keeps secrets out of errors: the Telegram Bot API puts the bot token
in the URL, and aiohttp's exceptions quote the URL they failed on. Every
transport failure therefore leaves here as a :class:`PlatformUnreachable`
whose message has the caller's secrets replaced, and with no chained
exception that a traceback would print.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

#: Per-call timeout for platform API calls; a stuck platform must not hold a session lock forever.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)
MAX_ATTEMPTS = 4
#: A platform asking us to wait longer than this gets its error raised instead.
MAX_RETRY_WAIT_SECONDS = 30.0
REDACTED = "<redacted>"

Sleep = Callable[[float], Awaitable[None]]


class PlatformApiError(Exception):
    """A platform API call failed; the message is the platform's own reason."""

    def __init__(self, platform: str, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"{platform} API error {status}: {message}")
        self.platform = platform
        self.status = status
        self.reason = message
        self.body = body


class PlatformUnreachable(PlatformApiError):
    """The call got no HTTP answer (connection refused, timeout, broken response).

    ``status`` is 0. Nothing is retried: the platform may have acted on the
    call (a message sent twice is worse than one reported failure).
    """

    def __init__(self, platform: str, message: str) -> None:
        super().__init__(platform, 0, message)

    def __str__(self) -> str:
        return f"{self.platform} API unreachable: {self.reason}"


@dataclass(slots=True)
class ApiResponse:
    status: int
    body: Any


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced, longest first."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _describe(exc: BaseException, url: str, timeout: aiohttp.ClientTimeout) -> str:
    """A short, human description of a transport failure, naming the host only."""
    host = urlsplit(url).netloc or "the platform"
    if isinstance(exc, TimeoutError):
        total = timeout.total or 0
        return f"no answer from {host} within {total:g} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {host}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid API URL (check the channel's origin)"
    detail = str(exc)
    return f"{type(exc).__name__} talking to {host}" + (f": {detail}" if detail else "")


async def request_json(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json: Any = None,
    headers: dict[str, str] | None = None,
    retry_after: Callable[[ApiResponse, int], float | None],
    sleep: Sleep = asyncio.sleep,
    platform: str = "platform",
    secrets: Iterable[str] = (),
    http_timeout: aiohttp.ClientTimeout | None = None,
) -> ApiResponse:
    """Send one API call, retrying while ``retry_after`` says how long to wait.

    ``retry_after`` is the platform's policy: it looks at a response (and the
    number of the attempt that got it) and returns the seconds to wait before
    another try, or ``None`` to return the response as it is.

    Raises :class:`PlatformUnreachable` when no HTTP answer came; its message
    never contains ``url``'s path or any of ``secrets``.
    """
    http_timeout = http_timeout or DEFAULT_TIMEOUT
    data = orjson.dumps(json) if json is not None else None
    send_headers = {"Content-Type": "application/json"} if data is not None else {}
    send_headers.update(headers or {})
    for attempt in range(1, MAX_ATTEMPTS + 1):
        failure: str | None = None
        try:
            response = await _send(http, method, url, data, send_headers, http_timeout)
        except (aiohttp.ClientError, TimeoutError) as exc:
            failure = scrub(_describe(exc, url, http_timeout), [urlsplit(url).path, *secrets])
        if failure is not None:
            # Raised outside the except block, so the aiohttp error (which quotes the
            # URL, and so Telegram's token) is not chained and no traceback shows it.
            raise PlatformUnreachable(platform, failure)
        wait = retry_after(response, attempt)
        if wait is None or attempt == MAX_ATTEMPTS or wait > MAX_RETRY_WAIT_SECONDS:
            return response
        await sleep(wait)
    raise AssertionError("unreachable")


async def _send(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    data: bytes | None,
    headers: dict[str, str],
    http_timeout: aiohttp.ClientTimeout,
) -> ApiResponse:
    async with http.request(method, url, data=data, headers=headers, timeout=http_timeout) as resp:
        raw = await resp.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        return ApiResponse(resp.status, body)


def backoff(attempt: int, base: float = 0.5) -> float:
    """Exponential, jittered wait, so workers retrying at once do not stampede."""
    return base * 2 ** (attempt - 1) * (0.5 + random.random())
