"""In-process keyed locks.

Every driver serialises events of one session inside the process with these
before (for shared stores) taking the cross-process lock, so the store only
sees contention between processes, never between tasks of one process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyedLock:
    """One FIFO :class:`asyncio.Lock` per key, dropped when nobody holds or waits.

    Dropping idle locks keeps memory bounded by the number of sessions that are
    busy right now, not by every session ever seen.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def __call__(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
