"""A fast fake LINE + Telegram API for the benchmark, run as its own process.

Raw asyncio protocol on uvloop with httptools' parser: the platform stand-in
must never be what bounds a run. It answers every Telegram call with
``{"ok":true,"result":{...message...}}`` and every LINE call with ``{}``, and
counts the calls per method.

Control endpoints (GET, on the same port):

* ``/__stats``            -> ``{"calls": {method: n}, "watch": {...}}``
* ``/__reset?watch=CHAT`` -> zero the counters; with ``watch`` also record, for
  that Telegram chat id, every ``Count: N`` text sent to it, so the hot-chat
  case can prove that no update was lost (the counts are exactly 1..N).

    python -m bench.fake_api --port 18080
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
from urllib.parse import parse_qs, unquote_plus, urlsplit

import httptools
import orjson

TELEGRAM_RESULT = (
    b'{"ok":true,"result":{"message_id":1,"date":1700000000,'
    b'"chat":{"id":1,"type":"private","first_name":"B"},"text":"ok"}}'
)
LINE_RESULT = b"{}"
COUNT_RE = re.compile(rb"Count(?::|%3A)(?:\s|\+|%20)*(\d+)")


def _response(body: bytes, status: bytes = b"200 OK") -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: keep-alive\r\n\r\n"
        + body
    )


TELEGRAM_RESPONSE = _response(TELEGRAM_RESULT)
LINE_RESPONSE = _response(LINE_RESULT)


class Stats:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.watch: bytes | None = None
        self.watch_counts: list[int] = []
        self.watch_calls = 0

    def reset(self, watch: str | None) -> None:
        self.calls = {}
        self.watch = watch.encode() if watch else None
        self.watch_counts = []
        self.watch_calls = 0

    def record(self, method: str, body: bytes) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if self.watch is None or method != "sendMessage" or self.watch not in body:
            return
        chat, text = _chat_and_text(body)
        if chat == self.watch:
            self.watch_calls += 1
            match = COUNT_RE.search(text)
            if match:
                self.watch_counts.append(int(match.group(1)))

    def snapshot(self) -> dict:
        counts = self.watch_counts
        watch = None
        if self.watch is not None:
            distinct = len(set(counts))
            watch = {
                "chat_id": self.watch.decode(),
                "send_calls": self.watch_calls,
                "distinct_counts": distinct,
                "max_count": max(counts) if counts else 0,
                # counts are exactly 1..N: every update saw the one before it
                "gapless": distinct == len(counts) and (not counts or max(counts) == distinct),
            }
        return {"calls": dict(self.calls), "watch": watch}


def _chat_and_text(body: bytes) -> tuple[bytes | None, bytes]:
    """chat_id and text of a sendMessage, whether sent as JSON, a form or multipart."""
    stripped = body.lstrip()
    if stripped.startswith(b"{"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None, b""
        return str(data.get("chat_id")).encode(), str(data.get("text", "")).encode()
    if b"Content-Disposition" in body:
        chat = re.search(rb'name="chat_id"\r\n(?:[^\r\n]*\r\n)*\r\n([^\r\n]*)', body)
        text = re.search(rb'name="text"\r\n(?:[^\r\n]*\r\n)*\r\n([^\r\n]*)', body)
        return (chat.group(1) if chat else None), (text.group(1) if text else b"")
    form = parse_qs(body.decode("utf-8", "replace"))
    chat_id = form.get("chat_id", [None])[0]
    return (chat_id.encode() if chat_id else None), unquote_plus(form.get("text", [""])[0]).encode()


STATS = Stats()


class FakeApiProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(_response(b'{"error":"bad request"}', b"400 Bad Request"))
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        url = self.url
        if url.startswith(b"/__"):
            self.transport.write(self._control(url.decode()))
            return
        path = url.split(b"?", 1)[0]
        body = b"".join(self.body)
        if path.startswith(b"/bot"):
            STATS.record(path.rsplit(b"/", 1)[-1].decode(), body)
            self.transport.write(TELEGRAM_RESPONSE)
        else:
            STATS.record(path.decode(), body)
            self.transport.write(LINE_RESPONSE)
        if not self.parser.should_keep_alive():
            self.transport.close()

    def _control(self, url: str) -> bytes:
        parts = urlsplit(url)
        if parts.path == "/__reset":
            watch = parse_qs(parts.query).get("watch", [None])[0]
            STATS.reset(watch)
            return _response(b'{"ok":true}')
        if parts.path == "/__stats":
            return _response(orjson.dumps(STATS.snapshot()))
        return _response(b'{"error":"not found"}', b"404 Not Found")


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FakeApiProtocol, host, port, backlog=2048)
    print(f"fake API listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.host, args.port))
    except ImportError:  # pragma: no cover
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
