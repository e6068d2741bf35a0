"""The durable inbox contract, on every shared driver (file, Redis alone, in a Cluster or
behind Sentinel, MongoDB).

Two stores on one backend stand for two processes. An owner "dies" the way it
would on its backend: on Redis and MongoDB its lease runs out (the store clock
moves past it); on the file store its OS locks go (the kernel drops them when a
process dies; closing the inbox does the same here).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bottender.sessions.base import Inbox, InboxEntry, SessionStore
from bottender.sessions.memory import MemoryStore
from tests.sessions.conftest import _backend
from tests.sessions.drivers import Backend, FakeClock

LEASE = 10.0


@pytest.fixture(params=["file", "redis", "redis-cluster", "redis-sentinel", "mongo"])
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made = _backend(request.param, request, tmp_path)
    yield made
    await made.cleanup()


async def two_processes(backend: Backend, clock: FakeClock) -> tuple[Inbox, Inbox]:
    stores: list[SessionStore] = [
        await backend.make(clock=clock, lock_lease=LEASE) for _ in range(2)
    ]
    inboxes = [store.inbox() for store in stores]
    assert inboxes[0] is not None and inboxes[1] is not None
    return inboxes[0], inboxes[1]


def dies(backend: Backend, inbox: Inbox, clock: FakeClock) -> None:
    if backend.driver == "file":
        inbox.close()  # type: ignore[attr-defined]
    else:
        clock.advance(LEASE + 1)


def entry(n: int) -> InboxEntry:
    return InboxEntry(f"entry-{n}", "line", b'{"events": [%d]}' % n)


async def test_the_memory_store_has_no_inbox() -> None:
    assert MemoryStore().inbox() is None


async def test_an_owned_entry_is_claimed_only_once_its_owner_is_gone(
    shared: Backend, clock: FakeClock
) -> None:
    first, second = await two_processes(shared, clock)
    await first.put(entry(1), owner="a" * 32)

    assert await second.claim("b" * 32, 10) == []

    dies(shared, first, clock)
    (claimed,) = await second.claim("b" * 32, 10)
    assert (claimed.id, claimed.channel, claimed.body) == ("entry-1", "line", b'{"events": [1]}')
    assert claimed.previous_owner == "a" * 32
    # Now the second process holds it: nobody else can take it.
    assert await first.claim("c" * 32, 10) == []


async def test_a_free_entry_goes_to_exactly_one_claimer(shared: Backend, clock: FakeClock) -> None:
    first, second = await two_processes(shared, clock)
    await first.put(entry(2), owner=None)

    got = await asyncio.gather(first.claim("a" * 32, 10), second.claim("b" * 32, 10))

    assert sorted(len(found) for found in got) == [0, 1]
    (claimed,) = got[0] or got[1]
    assert claimed.previous_owner is None


async def test_a_removed_entry_is_gone_and_a_resend_is_one_entry(
    shared: Backend, clock: FakeClock
) -> None:
    first, second = await two_processes(shared, clock)
    await first.put(entry(3), owner=None)
    await second.put(entry(3), owner=None)  # the platform resent the same body
    await first.put(entry(4), owner=None)
    await first.remove("entry-4")

    claimed = await second.claim("b" * 32, 10)

    assert [found.id for found in claimed] == ["entry-3"]


async def test_a_renewed_lease_keeps_the_entry_with_its_owner(
    shared: Backend, clock: FakeClock
) -> None:
    if shared.driver == "file":
        pytest.skip("file entries are held by OS locks, not leases")
    first, second = await two_processes(shared, clock)
    await first.put(entry(5), owner="a" * 32)
    for _ in range(3):
        clock.advance(LEASE * 0.6)
        await first.renew("a" * 32, ["entry-5"])
        assert await second.claim("b" * 32, 10) == []
    # Renewing what another owner holds changes nothing.
    await second.renew("b" * 32, ["entry-5"])
    clock.advance(LEASE + 1)
    assert [found.id for found in await second.claim("b" * 32, 10)] == ["entry-5"]


async def test_free_entries_are_claimed_oldest_first(shared: Backend, clock: FakeClock) -> None:
    if shared.driver == "file":
        pytest.skip("the file inbox orders by modification time, coarser than these puts")
    first, second = await two_processes(shared, clock)
    for n in (7, 6, 8):
        await first.put(entry(n), owner=None)
        clock.advance(0.01)

    assert [found.id for found in await second.claim("b" * 32, 2)] == ["entry-7", "entry-6"]
    assert [found.id for found in await second.claim("b" * 32, 2)] == ["entry-8"]


async def test_an_entry_given_back_is_claimable_at_once(shared: Backend, clock: FakeClock) -> None:
    first, second = await two_processes(shared, clock)
    await first.put(entry(9), owner="a" * 32)
    await second.drop("entry-9", "b" * 32)  # not its entry: nothing changes
    assert await second.claim("b" * 32, 10) == []

    await first.drop("entry-9", "a" * 32)  # a process shutting down with it unfinished

    assert [found.id for found in await second.claim("b" * 32, 10)] == ["entry-9"]
