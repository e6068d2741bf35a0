"""The conversation session: the one object every store reads and writes.

A session is plain data (JSON-compatible state plus a little metadata), so that
every driver can persist it the same way and a bot behaves identically on the
memory store in development and on Redis or MongoDB in production.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

#: Delivery ids a session remembers, and for how long: enough to recognise any
#: redelivery (platforms redeliver within minutes to hours), bounded in size.
HANDLED_LIMIT = 32
HANDLED_TTL_SECONDS = 24 * 60 * 60
#: However recent, no more ids than this are kept (see ``keep_for`` in record_handled).
HANDLED_MAX = 1024


@dataclass(slots=True)
class Session:
    """State and metadata of one conversation.

    ``last_activity`` is a Unix timestamp in seconds (``None`` for a session that
    has never been written); expiry is decided from it by the runtime, so stores
    with their own TTLs (Redis, MongoDB) only clean up what is already dead.

    ``handled`` maps the delivery ids of the session's recent events to when
    they were handled. It is written in the same write as the state, so "this
    event ran" and its effect on the state can never disagree, on any driver:
    a redelivery waits for the session's lock, finds its id here and is skipped.
    """

    id: str
    state: dict[str, Any] = field(default_factory=dict)
    last_activity: float | None = None
    user: dict[str, Any] | None = None
    group: dict[str, Any] | None = None
    room: dict[str, Any] | None = None
    channel: dict[str, Any] | None = None
    handled: dict[str, float] = field(default_factory=dict)

    @classmethod
    def new(cls, session_id: str, initial_state: dict[str, Any]) -> Session:
        """A fresh session whose state can never alias ``initial_state``."""
        return cls(id=session_id, state=copy.deepcopy(initial_state))

    def is_expired(self, now: float, expires_in_minutes: float | None) -> bool:
        if expires_in_minutes is None or self.last_activity is None:
            return False
        return now - self.last_activity > expires_in_minutes * 60

    def has_handled(self, delivery_id: str) -> bool:
        return delivery_id in self.handled

    def record_handled(self, delivery_id: str, now: float, keep_for: float = 0.0) -> None:
        """Remember ``delivery_id``, forgetting ids older than a day or beyond the limit.

        Ids younger than ``keep_for`` seconds are kept beyond ``HANDLED_LIMIT`` (up
        to ``HANDLED_MAX``): the durable inbox may replay an event that many newer
        events of a busy conversation later, and must still find it here.
        """
        handled = self.handled
        handled[delivery_id] = now
        # Insertion order is handling order, so the oldest id is always first.
        for oldest, at in list(handled.items()):
            age = now - at
            within = len(handled) <= HANDLED_LIMIT or (
                age < keep_for and len(handled) <= HANDLED_MAX
            )
            if within and age < HANDLED_TTL_SECONDS:
                break
            del handled[oldest]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a driver to encode; drivers choose the encoding."""
        data: dict[str, Any] = {"id": self.id, "state": self.state}
        if self.last_activity is not None:
            data["last_activity"] = self.last_activity
        for name in ("user", "group", "room", "channel"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.handled:
            data["handled"] = self.handled
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        return cls(
            id=data["id"],
            state=data.get("state") or {},
            last_activity=data.get("last_activity"),
            user=data.get("user"),
            group=data.get("group"),
            room=data.get("room"),
            channel=data.get("channel"),
            handled=data.get("handled") or {},
        )
