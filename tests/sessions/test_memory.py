"""The memory driver's own promise: a bounded LRU that forgets the least recently used."""

from __future__ import annotations

import pytest

from bottender.sessions.memory import MemoryStore
from bottender.sessions.session import Session


async def stored_ids(store: MemoryStore) -> set[str]:
    return {session.id async for session in store.all()}


async def test_the_oldest_session_is_evicted_first() -> None:
    store = MemoryStore(max_size=3)
    for key in ("a", "b", "c", "d", "e"):
        await store.write(Session(key))

    assert await stored_ids(store) == {"c", "d", "e"}
    assert await store.read("a") is None and await store.read("b") is None
    assert len(store) == 3


async def test_a_read_makes_a_session_recently_used() -> None:
    store = MemoryStore(max_size=3)
    for key in ("a", "b", "c"):
        await store.write(Session(key))

    await store.read("a")
    await store.write(Session("d"))

    assert await stored_ids(store) == {"a", "c", "d"}


async def test_a_write_makes_a_session_recently_used() -> None:
    store = MemoryStore(max_size=3)
    for key in ("a", "b", "c"):
        await store.write(Session(key))

    await store.write(Session("a", {"again": True}))
    await store.write(Session("d"))

    assert await stored_ids(store) == {"a", "c", "d"}


async def test_a_checkout_makes_a_session_recently_used() -> None:
    store = MemoryStore(max_size=2)
    for key in ("a", "b"):
        await store.write(Session(key))

    async with store.checkout("a"):
        pass
    await store.write(Session("c"))

    assert await stored_ids(store) == {"a", "c"}


@pytest.mark.parametrize("max_size", [0, -1, 1.5, True, "500"])
def test_max_size_must_be_a_positive_integer(max_size: object) -> None:
    with pytest.raises(ValueError, match="max_size"):
        MemoryStore(max_size=max_size)  # type: ignore[arg-type]


async def test_idle_locks_are_dropped() -> None:
    store = MemoryStore()
    for index in range(100):
        async with store.lock(f"line:U{index}"):
            pass

    assert len(store._locks) == 0
