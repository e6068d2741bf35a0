"""What the platform API clients share: the error type and bounded retries.

Each platform's client knows its own URLs and JSON; this module only knows
that a call may be refused (429) or fail on the platform's side (5xx), and
that such calls are worth a few bounded retries before the bot hears of it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

#: Per-call timeout for platform API calls; a stuck platform must not hold a session lock forever.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)
MAX_ATTEMPTS = 4
#: A platform asking us to wait longer than this gets its error raised instead.
MAX_RETRY_WAIT_SECONDS = 30.0


class PlatformApiError(Exception):
    """A platform API call failed; the message is the platform's own reason."""

    def __init__(self, platform: str, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"{platform} API error {status}: {message}")
        self.platform = platform
        self.status = status
        self.reason = message
        self.body = body


@dataclass(slots=True)
class ApiResponse:
    status: int
    body: Any


async def request_json(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json: Any = None,
    headers: dict[str, str] | None = None,
    retry_after: Callable[[ApiResponse, int], float | None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> ApiResponse:
    """Send one API call, retrying while ``retry_after`` says how long to wait.

    ``retry_after`` is the platform's policy: it looks at a response (and the
    number of the attempt that got it) and returns the seconds to wait before
    another try, or ``None`` to return the response as it is.
    """
    data = orjson.dumps(json) if json is not None else None
    send_headers = {"Content-Type": "application/json"} if data is not None else {}
    send_headers.update(headers or {})
    for attempt in range(1, MAX_ATTEMPTS + 1):
        async with http.request(
            method, url, data=data, headers=send_headers, timeout=DEFAULT_TIMEOUT
        ) as resp:
            raw = await resp.read()
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
            response = ApiResponse(resp.status, body)
        wait = retry_after(response, attempt)
        if wait is None or attempt == MAX_ATTEMPTS or wait > MAX_RETRY_WAIT_SECONDS:
            return response
        await sleep(wait)
    raise AssertionError("unreachable")


def backoff(attempt: int, base: float = 0.5) -> float:
    """Exponential, jittered wait, so workers retrying at once do not stampede."""
    return base * 2 ** (attempt - 1) * (0.5 + random.random())
