"""The limits of the HTTP edge: what no unauthenticated client may exhaust.

Every limit is a key of the config's ``server`` dict, with a default safe for a
gateway facing the internet. Those of the HTTP connection itself (header size,
read timeouts, keep-alive, connections) are enforced by the protocol of
``server/edge.py``; the others (requests in flight, events per body, platform API
connections) by the application.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

DEFAULT_MAX_BODY_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerLimits:
    #: Bytes of a body; beyond, 413.
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    #: Bytes of the request line and headers together; beyond, 431. Platforms send under 2 KiB.
    max_header_size: int = 32 * 1024
    #: Seconds a client has to send its request line and headers once it started (or
    #: connected); past them the connection is dropped (slow or stalled clients).
    header_timeout: float = 10.0
    #: Seconds a client has to send the whole body once its headers arrived.
    body_timeout: float = 30.0
    #: Seconds an idle keep-alive connection is kept between requests.
    keep_alive_timeout: float = 5.0
    #: Open connections; a request on a connection beyond them gets 503 and the connection is
    #: closed, and connections beyond twice as many are closed as soon as they are accepted.
    max_connections: int = 1000
    #: Authenticated webhooks whose events are running before their answer; beyond, 503
    #: (the platform redelivers). Counted after the signature check, so no unauthenticated
    #: client can take a slot.
    max_requests_in_flight: int = 200
    #: Events in one body; beyond, 400. LINE sends at most 100 per body in practice.
    max_events_per_body: int = 200
    #: Platform API connections a process opens at once; further calls queue for one.
    max_api_connections: int = 100


#: Which limits are whole numbers (the others are seconds, fractions allowed).
_INTEGERS = frozenset(
    {
        "max_body_size",
        "max_header_size",
        "max_connections",
        "max_requests_in_flight",
        "max_events_per_body",
        "max_api_connections",
    }
)
LIMIT_KEYS = tuple(f.name for f in fields(ServerLimits))


def server_limits(server: dict[str, Any]) -> ServerLimits:
    """The limits set in the config's ``server`` dict, defaults for the others.

    Raises ``ValueError`` naming the key (``server.header_timeout must be …``).
    """
    chosen: dict[str, Any] = {}
    for key in LIMIT_KEYS:
        if key not in server:
            continue
        value = server[key]
        if key in _INTEGERS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"server.{key} must be a positive integer, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"server.{key} must be a positive number of seconds, got {value!r}")
        chosen[key] = value
    return ServerLimits(**chosen)
