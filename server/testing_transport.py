"""The transport halves of BotTester, in-process: an ASGI call in, a recording client out.

``asgi_post`` hands a webhook body to the gateway's Starlette app as an ASGI
server would, with no socket. ``RecordingHttp`` stands in for the gateway's
``aiohttp.ClientSession``: the platform clients run their own code (URLs,
headers, JSON or multipart encoding, retries, error handling) and each call is
handed to ``record(call)`` for an answer instead of going to the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from bottender.connectors.testing import Answer, ApiCall


async def asgi_post(app: Any, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One POST through the ASGI app, in-process: the status and the response body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bot.test"),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 0),
        "server": ("bot.test", 443),
    }
    sent = False
    done = asyncio.Event()
    status = 500
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await app(scope, receive, send)
    done.set()
    return status, b"".join(chunks)


class RecordingHttp:
    """Stands in for the gateway's ``aiohttp.ClientSession``: calls are recorded and answered.

    The platform clients (connectors/line_api.py, telegram_api.py) run their
    own code unchanged: URL building, headers, JSON or multipart encoding,
    retries and error handling; only the socket is missing.
    """

    closed = False

    def __init__(self, record: Callable[[ApiCall], Answer]) -> None:
        self._record = record

    def request(self, method: str, url: Any, **options: Any) -> _Pending:
        return _Pending(self._call(method, str(url), options))

    def get(self, url: Any, **options: Any) -> _Pending:
        return self.request("GET", url, **options)

    def post(self, url: Any, **options: Any) -> _Pending:
        return self.request("POST", url, **options)

    def put(self, url: Any, **options: Any) -> _Pending:
        return self.request("PUT", url, **options)

    def delete(self, url: Any, **options: Any) -> _Pending:
        return self.request("DELETE", url, **options)

    async def close(self) -> None:
        """The tester owns it; the gateway never closes a client it was given."""

    async def _call(self, method: str, url: str, options: dict[str, Any]) -> _Response:
        await asyncio.sleep(0)  # a call is a suspension point, as over a socket
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        query.update({str(k): str(v) for k, v in (options.get("params") or {}).items()})
        call = ApiCall(
            method.upper(),
            url,
            parts.path,
            {str(k): str(v) for k, v in (options.get("headers") or {}).items()},
            _decode_body(options),
            query,
        )
        answer = self._record(call)
        if answer.content is not None:
            return _Response(answer.status, answer.content, answer.content_type)
        return _Response(answer.status, orjson.dumps(answer.body), "application/json")


def _decode_body(options: dict[str, Any]) -> Any:
    if options.get("json") is not None:
        return options["json"]
    data = options.get("data")
    if data is None:
        return None
    if isinstance(data, bytes | bytearray | str):
        raw = bytes(data, "utf-8") if isinstance(data, str) else bytes(data)
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return raw
    fields = getattr(data, "_fields", None)  # aiohttp.FormData
    if fields is not None:
        return {str(opts.get("name")): _field_value(value) for opts, _, value in fields}
    if isinstance(data, Mapping):
        return dict(data)
    return data


def _field_value(value: Any) -> Any:
    if hasattr(value, "read"):
        value = value.read()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


class _Response:
    """The parts of ``aiohttp.ClientResponse`` the clients read."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        self.status = status
        self._body = body
        self.content_type = content_type
        self.headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        self.ok = status < 400
        self.content = _Stream(body)

    async def __aenter__(self) -> _Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def read(self) -> bytes:
        return self._body

    async def text(self) -> str:
        return self._body.decode()

    async def json(self, **_: Any) -> Any:
        return orjson.loads(self._body) if self._body else None

    def release(self) -> None:
        pass

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise RuntimeError(f"HTTP {self.status}")


class _Stream:
    """``response.content``, for clients that stream large bodies (message content)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def read(self, n: int = -1) -> bytes:
        body, self._body = (self._body, b"") if n < 0 else (self._body[:n], self._body[n:])
        return body

    async def iter_chunked(self, size: int) -> AsyncIterator[bytes]:
        while chunk := await self.read(size):
            yield chunk

    def iter_any(self) -> AsyncIterator[bytes]:
        return self.iter_chunked(64 * 1024)


class _Pending:
    """What ``session.request(...)`` returns: awaitable, and an async context manager."""

    def __init__(self, coro: Any) -> None:
        self._coro = coro
        self._response: _Response | None = None

    def __await__(self) -> Any:
        return self._coro.__await__()

    async def __aenter__(self) -> _Response:
        self._response = await self._coro
        return self._response

    async def __aexit__(self, *exc: object) -> None:
        return None
