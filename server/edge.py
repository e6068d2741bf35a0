"""The HTTP protocol the gateway is served with: uvicorn's h11 one, with the edge's limits.

Why h11 rather than httptools (uvicorn's default when installed): uvicorn's
httptools protocol accepts a request head of any size, and its time grows with
the size (a 16 MiB header held a worker for about 6 s in ``bench/edge.py``, every
other connection of that worker waiting), while h11 bounds what it buffers of an
incomplete head (``h11_max_incomplete_event_size``) and names the overflow a 431.
h11 being pure Python, its cost was measured beside httptools on the whole webhook
path (``python -m bench.edge``; bench/ANALYSIS.md): within the noise of a shared
machine, since a webhook's time goes to the session, the bot and its API call,
not to parsing a 300-byte head. On top of h11 this protocol adds what neither
parser does:

* a head size bound that also holds for a head arriving complete in one read
  (h11 checks only incomplete ones): beyond ``max_header_size``, 431 and close;
* a header timeout: the request line and headers must arrive within
  ``header_timeout`` seconds of the connection (or of the first byte of a later
  request on a kept-alive connection), else the connection is dropped;
* a body timeout: the whole body within ``body_timeout`` seconds of the headers;
* a connection cap: a request arriving on a connection beyond ``max_connections``
  is answered 503 (JSON, ``Retry-After: 1``) and the connection closed; beyond twice
  as many, connections are closed as soon as they are accepted, so descriptors stay
  bounded.

Idle kept-alive connections are closed by uvicorn after ``keep_alive_timeout``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from bottender.server.limits import ServerLimits
from bottender.server.logs import access_logger, log_fields

logger = logging.getLogger("bottender.server")
#: Descriptors a process needs besides connections: store pools, files, logs, the loop.
SPARE_DESCRIPTORS = 128


class _Connection(h11.Connection):
    """h11's connection, remembering the status its last protocol error suggests (431…)."""

    error_status = 400

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as error:
            self.error_status = error.error_status_hint
            raise


class EdgeProtocol(H11Protocol):
    def __init__(self, *args: Any, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.conn = _Connection(h11.SERVER, limits.max_header_size)
        self._read_timer: asyncio.TimerHandle | None = None
        #: What the read timer is waiting for: "head", "body" or nothing.
        self._waiting_for: str | None = None
        #: Bytes of the request head received so far.
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        open_now = len(self.connections)
        if open_now > 2 * self.limits.max_connections:
            transport.close()
            return
        if open_now > self.limits.max_connections:
            # Requests on this connection are answered 503 without reaching the gateway.
            self.app = _over_capacity
        self._track_reads(arm_head=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._head_too_large(data):
            self._refuse_head()
            return
        super().data_received(data)
        self._track_reads(arm_head=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Between requests, uvicorn's keep-alive timeout applies, not the header timeout.
        self._track_reads(arm_head=False)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a malformed request, with the status h11 suggests (431…)."""
        if self.conn.error_status == 431:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def _head_too_large(self, data: bytes) -> bool:
        """Count the bytes of a request head as they arrive.

        h11 bounds only what it buffers of an *incomplete* head: a complete one
        that arrives in one read (up to 256 KiB) would pass, so it is counted here.
        """
        end = data.find(b"\r\n\r\n")
        size = self._head_bytes + (len(data) if end < 0 else end)
        self._head_bytes = size if end < 0 else 0
        return size > self.limits.max_header_size

    def _refuse_head(self) -> None:
        """431 and close: nothing of the request is handed to the app."""
        body = f"Request headers larger than {self.limits.max_header_size} bytes.".encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        self.transport.close()

    def _track_reads(self, *, arm_head: bool) -> None:
        """Keep one timer on what the client still has to send: its head, then its body."""
        state = self.conn.their_state
        waiting_for: str | None = None
        if state is h11.SEND_BODY:
            waiting_for = "body"
        elif state is h11.IDLE and arm_head and not self.transport.is_closing():
            waiting_for = "head"
        if waiting_for == self._waiting_for and (waiting_for is None or self._read_timer):
            return
        self._cancel_read_timer()
        self._waiting_for = waiting_for
        if waiting_for is not None:
            limits = self.limits
            seconds = limits.header_timeout if waiting_for == "head" else limits.body_timeout
            self._read_timer = self.loop.call_later(seconds, self._read_timed_out)

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        self._waiting_for = None

    def _read_timed_out(self) -> None:
        """The client stalled: drop it. A body cut short reaches the app as a disconnect."""
        self._read_timer = None
        # Info, not warning: a slow-client flood would otherwise flood the log too.
        self.logger.info(
            "dropping %s: its request %s did not arrive within the timeout",
            f"{self.client[0]}:{self.client[1]}" if self.client else "a client",
            "head" if self._waiting_for == "head" else "body",
        )
        self._waiting_for = None
        if not self.transport.is_closing():
            self.transport.close()


_OVER_CAPACITY_BODY = b'{"ok":false,"error":"too many connections; retry later"}'


async def _over_capacity(scope: Any, receive: Any, send: Any) -> None:
    """503 in the webhooks' JSON form, closing the connection (uvicorn honours the header)."""
    if scope["type"] != "http":
        return
    client = scope.get("client")
    log_fields(
        access_logger,
        logging.WARNING,
        "http",
        {"status": 503, "error": "too many connections", "client": client[0] if client else None},
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_OVER_CAPACITY_BODY)).encode()),
        (b"connection", b"close"),
        (b"retry-after", b"1"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _OVER_CAPACITY_BODY})


def descriptors_needed(limits: ServerLimits) -> int:
    """File descriptors the caps can take: connections (closed at accept past twice the
    cap), platform API sockets, and a margin for the rest."""
    return 2 * limits.max_connections + limits.max_api_connections + SPARE_DESCRIPTORS


def raise_descriptor_limit(limits: ServerLimits) -> int:
    """Raise this process's soft ``RLIMIT_NOFILE`` (up to the hard one) so the caps hold.

    Past the descriptor limit ``accept`` fails and every webhook with it, which is
    what the connection cap is there to prevent; a soft limit of 1024 (a common
    default) is below what 1000 connections need. Workers inherit the limit.
    Returns the soft limit now in force; warns when it is still too low.
    """
    needed = descriptors_needed(limits)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < needed:
        logger.warning(
            "server.max_connections=%d needs about %d file descriptors but the limit is %d"
            " (ulimit -n): lower server.max_connections or raise the limit",
            limits.max_connections,
            needed,
            soft,
        )
    return soft


def uvicorn_options(limits: ServerLimits) -> dict[str, Any]:
    """The ``uvicorn.Config`` / ``uvicorn.run`` arguments that put ``limits`` at the edge.

    Also raises the process's descriptor limit to what the caps need
    (:func:`raise_descriptor_limit`), before uvicorn starts any worker.
    """
    raise_descriptor_limit(limits)
    return {
        "http": functools.partial(EdgeProtocol, limits=limits),
        "h11_max_incomplete_event_size": limits.max_header_size,
        "timeout_keep_alive": limits.keep_alive_timeout,
    }
