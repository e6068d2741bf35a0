"""The conversation session: the one object every store reads and writes.

A session is plain data (JSON-compatible state plus a little metadata), so that
every driver can persist it the same way and a bot behaves identically on the
memory store in development and on Redis or MongoDB in production.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Session:
    """State and metadata of one conversation.

    ``last_activity`` is a Unix timestamp in seconds (``None`` for a session that
    has never been written); expiry is decided from it by the runtime, so stores
    with their own TTLs (Redis, MongoDB) only clean up what is already dead.
    """

    id: str
    state: dict[str, Any] = field(default_factory=dict)
    last_activity: float | None = None
    user: dict[str, Any] | None = None
    group: dict[str, Any] | None = None
    room: dict[str, Any] | None = None
    channel: dict[str, Any] | None = None

    @classmethod
    def new(cls, session_id: str, initial_state: dict[str, Any]) -> Session:
        """A fresh session whose state can never alias ``initial_state``."""
        return cls(id=session_id, state=copy.deepcopy(initial_state))

    def is_expired(self, now: float, expires_in_minutes: float | None) -> bool:
        if expires_in_minutes is None or self.last_activity is None:
            return False
        return now - self.last_activity > expires_in_minutes * 60

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a driver to encode; drivers choose the encoding."""
        data: dict[str, Any] = {"id": self.id, "state": self.state}
        if self.last_activity is not None:
            data["last_activity"] = self.last_activity
        for name in ("user", "group", "room", "channel"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
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
        )
