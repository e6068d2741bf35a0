"""The memory driver: a bounded LRU cache in this process.

Sessions are kept encoded (compact JSON bytes) rather than as live objects: a
read always hands out fresh objects, exactly as a persistent driver would, so
a bot cannot change a stored session behind the runtime's back, and 100k
sessions fit in a few tens of megabytes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import orjson
from lru import LRU

from bottender.sessions.base import DEFAULT_EVENT_TTL_SECONDS, SessionStore
from bottender.sessions.locks import KeyedLock
from bottender.sessions.session import Session

DEFAULT_MAX_SIZE = 500
#: Handled event ids remembered at most; the oldest are forgotten first.
MAX_REMEMBERED_EVENTS = 100_000


class MemoryStore(SessionStore):
    """Least recently used sessions are evicted once ``max_size`` is reached."""

    driver = "memory"

    def __init__(
        self,
        max_size: int = DEFAULT_MAX_SIZE,
        *,
        event_ttl: float = DEFAULT_EVENT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < 1:
            raise ValueError(f"max_size must be a positive integer, got {max_size!r}")
        self._sessions: LRU = LRU(max_size)
        self._events: LRU = LRU(MAX_REMEMBERED_EVENTS)
        self._event_ttl = event_ttl
        self._clock = clock
        self._locks = KeyedLock()

    @property
    def max_size(self) -> int:
        return self._sessions.get_size()

    async def read(self, key: str) -> Session | None:
        data = self._sessions.get(key)
        return None if data is None else Session.from_dict(orjson.loads(data))

    async def write(self, session: Session) -> None:
        # orjson hands out bytes inside a buffer of at least 4 KiB; kept as is, every
        # stored session would cost that much. A copy is exactly as long as the JSON.
        self._sessions[session.id] = memoryview(orjson.dumps(session.to_dict())).tobytes()

    async def destroy(self, key: str) -> None:
        self._sessions.pop(key, None)

    async def all(self) -> AsyncIterator[Session]:
        for data in list(self._sessions.values()):
            yield Session.from_dict(orjson.loads(data))

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        return self._locks(key)

    async def claim_event(self, event_id: str) -> bool:
        now = self._clock()
        expires = self._events.get(event_id)
        if expires is not None and expires > now:
            return False
        self._events[event_id] = now + self._event_ttl
        return True

    async def release_event(self, event_id: str) -> None:
        self._events.pop(event_id, None)

    def __len__(self) -> int:
        return len(self._sessions)
