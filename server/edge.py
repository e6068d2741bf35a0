"""The HTTP protocol the gateway is served with: uvicorn's h11 one, with the edge's limits.

Why h11 rather than httptools (uvicorn's default when installed): h11 bounds the
bytes it buffers for an incomplete request head (``h11_max_incomplete_event_size``)
and says the overflow is a 431, while uvicorn's httptools protocol keeps appending
header bytes without a bound (a 128 MiB header held a worker for seconds and
hundreds of MB). The cost, measured by ``bench/edge.py`` (see bench/ANALYSIS.md),
is small beside a bot's own work. On top of h11 this protocol adds what neither
parser does:

* a header timeout: the request line and headers must arrive within
  ``header_timeout`` seconds of the connection (or of the first byte of a later
  request on a kept-alive connection), else the connection is dropped;
* a body timeout: the whole body within ``body_timeout`` seconds of the headers;
* a connection cap: a request arriving on a connection beyond ``max_connections``
  is answered 503 and the connection closed; beyond twice as many, connections are
  closed as soon as they are accepted, so descriptors stay bounded.

Idle kept-alive connections are closed by uvicorn after ``keep_alive_timeout``.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from bottender.server.limits import ServerLimits

_REASONS = {400: b"Bad Request", 431: b"Request Header Fields Too Large"}


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

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        open_now = len(self.connections)
        if open_now > 2 * self.limits.max_connections:
            transport.close()
            return
        # uvicorn answers 503 (and closes) when its concurrency limit is reached: make
        # that the case for this connection alone when it is over the cap.
        self.limit_concurrency = 0 if open_now > self.limits.max_connections else None
        self._track_reads(arm_head=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track_reads(arm_head=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Between requests, uvicorn's keep-alive timeout applies, not the header timeout.
        self._track_reads(arm_head=False)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a malformed request, with the status h11 suggests (431…)."""
        status = self.conn.error_status if self.conn.error_status in _REASONS else 400
        if status == 431:
            msg = f"Request headers larger than {self.limits.max_header_size} bytes."
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
        event = h11.Response(status_code=status, headers=headers, reason=_REASONS[status])
        self.transport.write(self.conn.send(event))
        self.transport.write(self.conn.send(h11.Data(data=msg.encode("ascii"))))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()

    def _track_reads(self, *, arm_head: bool) -> None:
        """Keep one timer on what the client still has to send: its head, then its body."""
        state = self.conn.their_state
        if state is h11.IDLE and arm_head and not self.transport.is_closing():
            waiting_for: str | None = "head"
        elif state is h11.SEND_BODY:
            waiting_for = "body"
        else:
            waiting_for = None
        if state is h11.IDLE and not arm_head:
            waiting_for = None
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
        self.logger.warning(
            "dropping %s: its request %s did not arrive within the timeout",
            f"{self.client[0]}:{self.client[1]}" if self.client else "a client",
            "head" if self._waiting_for == "head" else "body",
        )
        self._waiting_for = None
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(limits: ServerLimits) -> dict[str, Any]:
    """The ``uvicorn.Config`` / ``uvicorn.run`` arguments that put ``limits`` at the edge."""
    return {
        "http": functools.partial(EdgeProtocol, limits=limits),
        "h11_max_incomplete_event_size": limits.max_header_size,
        "timeout_keep_alive": limits.keep_alive_timeout,
    }
