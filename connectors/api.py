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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from bottender.connectors.base import sdk_plain

# aiohttp's ``connect`` counts the wait for a pooled connection too: under a burst larger
# than ``max_api_connections`` the calls queued behind the pool would fail as unreachable
# (and an event answered 200 would lose its push). ``sock_connect`` bounds only the TCP
# connect; the pool wait is bounded by the total.
#: Downloads may be large: no total limit, but a stalled connect or read is given up.
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=60, sock_connect=5, sock_read=30)
#: Per-call timeout for platform API calls; a stuck platform must not hold a session lock forever.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=15, sock_connect=5)
MAX_ATTEMPTS = 4
#: A platform asking us to wait longer than this gets its error raised instead.
MAX_RETRY_WAIT_SECONDS = 30.0
REDACTED = "<redacted>"

Sleep = Callable[[float], Awaitable[None]]
#: Builds a fresh multipart body for each attempt (aiohttp's FormData is single-use).
FormFactory = Callable[[], aiohttp.FormData]
#: Told of each API request as it starts (the method's name, never ids or tokens); returns
#: what to call with the HTTP status (0: no answer) when it ends. The server passes one to
#: count and trace platform calls; connectors cannot import the server, so it comes in here.
Observer = Callable[[str], Callable[[int], None]]


class PlatformApiError(Exception):
    """A platform API call was refused: names the call, the HTTP status and the platform's reason.

    ``str(error)`` reads e.g. ``Telegram API error 400 in sendPhoto: Bad Request:
    wrong file identifier`` or ``LINE API error 400 in POST /v2/bot/message/reply:
    Invalid reply token``; ``method``, ``status``, ``reason`` (the platform's own
    description) and ``body`` (its JSON answer) are there for code that decides.
    """

    def __init__(
        self, platform: str, status: int, message: str, body: Any = None, method: str = ""
    ) -> None:
        where = f" in {method}" if method else ""
        super().__init__(f"{platform} API error {status}{where}: {message}")
        self.platform = platform
        self.status = status
        self.reason = message
        self.body = body
        self.method = method


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
        total = timeout.total or timeout.sock_read or DEFAULT_TIMEOUT.total or 0
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
    form: FormFactory | None = None,
    headers: dict[str, str] | None = None,
    retry_after: Callable[[ApiResponse, int], float | None],
    sleep: Sleep = asyncio.sleep,
    platform: str = "platform",
    secrets: Iterable[str] = (),
    observe: Observer | None = None,
    label: str = "",
    http_timeout: aiohttp.ClientTimeout | None = None,
) -> ApiResponse:
    """Send one API call, retrying while ``retry_after`` says how long to wait.

    ``retry_after`` is the platform's policy: it looks at a response (and the
    number of the attempt that got it) and returns the seconds to wait before
    another try, or ``None`` to return the response as it is.

    The body is ``json`` (SDK objects in it encoded by :func:`sdk_plain`), or
    the multipart form ``form()`` builds, anew for each attempt.

    Raises :class:`PlatformUnreachable` when no HTTP answer came; its message
    never contains ``url``'s path or any of ``secrets``. Each attempt is reported to
    ``observe`` (when given) under ``label``.
    """
    http_timeout = http_timeout or DEFAULT_TIMEOUT
    data = orjson.dumps(json, default=sdk_plain) if json is not None else None
    send_headers = {"Content-Type": "application/json"} if data is not None else {}
    send_headers.update(headers or {})
    for attempt in range(1, MAX_ATTEMPTS + 1):
        failure: str | None = None
        ended = observe(label) if observe is not None else None
        status = 0
        try:
            body = form() if form is not None else data
            response = await _send(http, method, url, body, send_headers, http_timeout)
            status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            failure = scrub(_describe(exc, url, http_timeout), [urlsplit(url).path, *secrets])
        finally:
            if ended is not None:
                ended(status)
        if failure is not None:
            # Raised outside the except block, so the aiohttp error (which quotes the
            # URL, and so Telegram's token) is not chained and no traceback shows it.
            raise PlatformUnreachable(platform, failure)
        wait = retry_after(response, attempt)
        if wait is None or attempt == MAX_ATTEMPTS or wait > MAX_RETRY_WAIT_SECONDS:
            return response
        await sleep(wait)
    raise AssertionError("unreachable")


@asynccontextmanager
async def open_stream(
    http: aiohttp.ClientSession,
    url: str,
    *,
    headers: dict[str, str],
    retry_after: Callable[[ApiResponse, int], float | None],
    refused: Callable[[ApiResponse], PlatformApiError],
    sleep: Sleep = asyncio.sleep,
    platform: str = "platform",
    secrets: Iterable[str] = (),
    observe: Observer | None = None,
    label: str = "",
) -> AsyncIterator[aiohttp.ClientResponse]:
    """GET ``url`` and hand over the open response, for its body to be read in chunks.

    Large content (a video a user sent) is never read whole here: the caller
    streams it where it goes. A refusal is read (it is small JSON) and raised
    as ``refused(response)``; 429 and 5xx are retried as ``retry_after`` says.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        failure: str | None = None
        ended = observe(label) if observe is not None else None
        status = 0
        try:
            resp = await http.get(url, headers=headers, timeout=STREAM_TIMEOUT)
            status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            failure = scrub(_describe(exc, url, STREAM_TIMEOUT), [urlsplit(url).path, *secrets])
        finally:
            if ended is not None:  # the answer's head: a stream's body is the caller's time
                ended(status)
        if failure is not None:
            raise PlatformUnreachable(platform, failure)
        if resp.status < 400:
            break
        async with resp:
            answer = ApiResponse(resp.status, _decode(await resp.read()))
        wait = retry_after(answer, attempt)
        if wait is None or attempt == MAX_ATTEMPTS or wait > MAX_RETRY_WAIT_SECONDS:
            raise refused(answer)
        await sleep(wait)
    async with resp:
        yield resp


async def _send(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    data: bytes | aiohttp.FormData | None,
    headers: dict[str, str],
    http_timeout: aiohttp.ClientTimeout,
) -> ApiResponse:
    async with http.request(method, url, data=data, headers=headers, timeout=http_timeout) as resp:
        return ApiResponse(resp.status, _decode(await resp.read()))


def _decode(raw: bytes) -> Any:
    """A platform's answer: its JSON, or its text when it is not JSON."""
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def backoff(attempt: int, base: float = 0.5) -> float:
    """Exponential, jittered wait, so workers retrying at once do not stampede."""
    return base * 2 ** (attempt - 1) * (0.5 + random.random())
