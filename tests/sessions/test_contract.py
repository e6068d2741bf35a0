"""The session store contract, one behaviour per test, run against every driver.

A bot must behave the same on the memory store in development and on the
file, Redis or MongoDB store in production; these tests are that promise.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

import pytest

from bottender.sessions.base import SessionStore
from bottender.sessions.session import Session
from tests.sessions.drivers import Backend, FakeClock

NESTED_STATE = {
    "count": 3,
    "ratio": 0.25,
    "done": False,
    "nothing": None,
    "name": "Zoë 日本 🤖",
    "steps": [1, "two", {"three": [3.0, None]}],
    "profile": {"address": {"city": "Taipei", "tags": ["a", "b"]}, "empty": {}},
}


async def collect(store: SessionStore) -> dict[str, Session]:
    return {session.id: session async for session in store.all()}


async def test_a_session_never_written_reads_as_none(backend: Backend) -> None:
    store = await backend.make()

    assert await store.read("line:Unever") is None


async def test_a_written_session_reads_back_equal(backend: Backend) -> None:
    store = await backend.make()
    session = Session(
        "line:U1",
        state=NESTED_STATE,
        last_activity=1_700_000_000.5,
        user={"id": "U1", "displayName": "Ann"},
        group={"id": "G1"},
        room={"id": "R1"},
        channel={"id": "C1"},
    )

    await store.write(session)

    assert await store.read("line:U1") == session


async def test_reads_hand_out_fresh_objects(backend: Backend) -> None:
    store = await backend.make()
    await store.write(Session("telegram:1", {"profile": {"name": "a"}}))

    first = await store.read("telegram:1")
    assert first is not None
    first.state["profile"]["name"] = "changed behind the store's back"

    again = await store.read("telegram:1")
    assert again is not None and again.state == {"profile": {"name": "a"}}


async def test_a_write_replaces_the_previous_session(backend: Backend) -> None:
    store = await backend.make()
    await store.write(Session("telegram:1", {"a": 1, "b": 2}))

    await store.write(Session("telegram:1", {"a": 10}))

    stored = await store.read("telegram:1")
    assert stored is not None and stored.state == {"a": 10}


async def test_destroy_forgets_the_session_and_tolerates_a_missing_one(backend: Backend) -> None:
    store = await backend.make()
    await store.write(Session("telegram:1", {"a": 1}))

    await store.destroy("telegram:1")
    await store.destroy("telegram:never-written")

    assert await store.read("telegram:1") is None
    assert "telegram:1" not in await collect(store)


async def test_all_yields_every_stored_session_once(backend: Backend) -> None:
    store = await backend.make()
    written = {f"line:U{i}": Session(f"line:U{i}", {"i": i}) for i in range(30)}
    for session in written.values():
        await store.write(session)

    assert await collect(store) == written


async def test_all_ignores_locks_and_event_claims(backend: Backend) -> None:
    store = await backend.make()
    await store.write(Session("line:U1", {"i": 1}))
    await store.claim_event("evt-1")

    async with store.lock("line:U2"):
        listed = await collect(store)

    assert list(listed) == ["line:U1"]


async def test_stores_sharing_a_backend_see_each_others_sessions(backend: Backend) -> None:
    if not backend.shared:
        pytest.skip(f"{backend.driver} sessions live in one process")
    one, other = await backend.make(), await backend.make()

    await one.write(Session("line:U1", {"from": "one"}))

    stored = await other.read("line:U1")
    assert stored is not None and stored.state == {"from": "one"}


async def test_one_key_is_held_by_one_task_at_a_time(backend: Backend) -> None:
    stores = [await backend.make()]
    if backend.shared:  # a second store stands in for a second process
        stores.append(await backend.make())
    inside = 0
    most_inside = 0

    async def hold(store: SessionStore) -> None:
        nonlocal inside, most_inside
        async with store.lock("line:U1"):
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0.002)
            inside -= 1

    await asyncio.gather(*(hold(stores[i % len(stores)]) for i in range(12)))

    assert most_inside == 1


async def test_different_keys_are_held_at_the_same_time(backend: Backend) -> None:
    store = await backend.make()
    both_inside = asyncio.Event()
    arrived = 0

    async def hold(key: str) -> None:
        nonlocal arrived
        async with store.lock(key):
            arrived += 1
            if arrived == 2:
                both_inside.set()
            await asyncio.wait_for(both_inside.wait(), timeout=5)

    await asyncio.gather(hold("line:U1"), hold("line:U2"))


async def test_waiters_of_one_process_get_the_lock_in_arrival_order(backend: Backend) -> None:
    store = await backend.make()
    order: list[int] = []
    first_in = asyncio.Event()

    async def hold(number: int) -> None:
        async with store.lock("line:U1"):
            first_in.set()
            order.append(number)
            await asyncio.sleep(0.001)

    tasks = [asyncio.create_task(hold(0))]
    await first_in.wait()
    for number in range(1, 6):
        tasks.append(asyncio.create_task(hold(number)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)

    assert order == [0, 1, 2, 3, 4, 5]


async def test_a_lock_is_released_when_its_holder_fails(backend: Backend) -> None:
    store = await backend.make()

    with pytest.raises(RuntimeError):
        async with store.lock("line:U1"):
            raise RuntimeError("bot crashed")

    async with asyncio.timeout(5), store.lock("line:U1"):
        pass


async def test_a_lock_is_released_when_its_holder_is_cancelled(backend: Backend) -> None:
    store = await backend.make()
    holding = asyncio.Event()

    async def hold_forever() -> None:
        async with store.lock("line:U1"):
            holding.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hold_forever())
    await holding.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async with asyncio.timeout(5), store.lock("line:U1"):
        pass


async def test_waiters_cancelled_at_any_moment_leave_no_lock_behind(backend: Backend) -> None:
    """Cancelled while asking the backend, a waiter may just have been given the lock."""
    holder = await backend.make()
    waiter = await backend.make() if backend.shared else holder

    async def wait_for_the_lock() -> None:
        async with waiter.checkout("line:U1"):
            pass

    for pause in (0, 0.0002, 0.0005, 0.001, 0.002, 0.005):
        async with holder.lock("line:U1"):
            waiting = asyncio.create_task(wait_for_the_lock())
            await asyncio.sleep(0.01)  # the waiter is polling now
        await asyncio.sleep(pause)
        waiting.cancel()
        with suppress(asyncio.CancelledError):
            await waiting

        async with asyncio.timeout(5), holder.lock("line:U1"):
            pass
    assert await backend.lock_residue() == []


async def test_a_holder_slower_than_the_lock_lease_keeps_its_lock(backend: Backend) -> None:
    slow = await backend.make(lock_lease=0.15)
    other = await backend.make(lock_lease=0.15) if backend.shared else slow
    order: list[str] = []
    slow_inside = asyncio.Event()

    async def slow_bot() -> None:
        async with slow.checkout("line:U1") as checkout:
            order.append("slow in")
            slow_inside.set()
            await asyncio.sleep(0.5)  # the slowness under test: more than three leases
            checkout.save(Session("line:U1", {"by": "slow"}))
            order.append("slow out")

    async def next_event() -> None:
        await slow_inside.wait()
        async with other.checkout("line:U1") as checkout:
            order.append("next in")
            assert checkout.session == Session("line:U1", {"by": "slow"})

    await asyncio.gather(slow_bot(), next_event())

    assert order == ["slow in", "slow out", "next in"]


async def test_checkout_reads_under_the_lock_and_saves_only_when_asked(backend: Backend) -> None:
    store = await backend.make()
    await store.write(Session("line:U1", {"count": 1}))

    async with store.checkout("line:U1") as checkout:
        assert checkout.session is not None and checkout.session.state == {"count": 1}
        checkout.session.state["count"] = 99  # changed but never saved

    stored = await store.read("line:U1")
    assert stored is not None and stored.state == {"count": 1}

    async with store.checkout("line:U1") as checkout:
        assert checkout.session is not None
        checkout.save(Session("line:U1", {"count": 2}))

    stored = await store.read("line:U1")
    assert stored is not None and stored.state == {"count": 2}


async def test_checkout_of_a_new_conversation_finds_nothing_and_leaves_nothing(
    backend: Backend,
) -> None:
    store = await backend.make()

    async with store.checkout("line:Unew") as checkout:
        assert checkout.session is None

    assert await store.read("line:Unew") is None
    assert await collect(store) == {}


async def test_checkout_saves_nothing_when_the_bot_fails(backend: Backend) -> None:
    store = await backend.make()
    await store.write(Session("line:U1", {"count": 1}))

    with pytest.raises(RuntimeError):
        async with store.checkout("line:U1") as checkout:
            checkout.save(Session("line:U1", {"count": 2}))
            raise RuntimeError("bot crashed after set_state")

    stored = await store.read("line:U1")
    assert stored is not None and stored.state == {"count": 1}
    async with asyncio.timeout(5), store.checkout("line:U1"):
        pass


async def test_concurrent_checkouts_lose_no_update(backend: Backend) -> None:
    stores = [await backend.make()]
    if backend.shared:
        stores.append(await backend.make())

    async def increment(store: SessionStore) -> None:
        async with store.checkout("line:U1") as checkout:
            session = checkout.session or Session.new("line:U1", {"count": 0})
            await asyncio.sleep(0)
            session.state["count"] += 1
            checkout.save(session)

    await asyncio.gather(*(increment(stores[i % len(stores)]) for i in range(40)))

    stored = await stores[0].read("line:U1")
    assert stored is not None and stored.state == {"count": 40}


async def test_lock_and_checkout_exclude_each_other(backend: Backend) -> None:
    store = await backend.make()

    async def via_lock() -> None:
        async with store.lock("line:U1"):
            session = await store.read("line:U1") or Session.new("line:U1", {"count": 0})
            await asyncio.sleep(0)
            session.state["count"] += 1
            await store.write(session)

    async def via_checkout() -> None:
        async with store.checkout("line:U1") as checkout:
            session = checkout.session or Session.new("line:U1", {"count": 0})
            await asyncio.sleep(0)
            session.state["count"] += 1
            checkout.save(session)

    await asyncio.gather(*(via_lock() if i % 2 else via_checkout() for i in range(20)))

    stored = await store.read("line:U1")
    assert stored is not None and stored.state == {"count": 20}


async def test_a_redelivered_event_is_claimed_only_once(backend: Backend) -> None:
    store = await backend.make()

    assert await store.claim_event("line:evt-1") is True
    assert await store.claim_event("line:evt-1") is False
    assert await store.claim_event("line:evt-2") is True


async def test_a_released_event_can_be_claimed_again(backend: Backend) -> None:
    store = await backend.make()
    await store.claim_event("telegram:42")

    await store.release_event("telegram:42")
    await store.release_event("telegram:never-claimed")

    assert await store.claim_event("telegram:42") is True
    assert await store.claim_event("telegram:42") is False


async def test_an_event_claim_expires_after_event_ttl(backend: Backend, clock: FakeClock) -> None:
    store = await backend.make(clock=clock, event_ttl=60)
    assert await store.claim_event("telegram:42") is True

    clock.advance(59)
    assert await store.claim_event("telegram:42") is False

    clock.advance(2)
    assert await store.claim_event("telegram:42") is True
    assert await store.claim_event("telegram:42") is False


async def test_claims_are_seen_by_every_store_of_the_backend(backend: Backend) -> None:
    if not backend.shared:
        pytest.skip(f"{backend.driver} claims live in one process")
    one, other = await backend.make(), await backend.make()

    assert await one.claim_event("line:evt-1") is True
    assert await other.claim_event("line:evt-1") is False


async def test_least_recently_used_sessions_are_evicted_at_max_size(backend: Backend) -> None:
    if backend.driver != "memory":
        pytest.skip(f"the {backend.driver} store keeps every session")
    store = await backend.make(max_size=2)
    for key in ("line:U1", "line:U2", "line:U3"):
        await store.write(Session(key))

    assert set(await collect(store)) == {"line:U2", "line:U3"}


async def test_close_leaves_no_locks_or_tasks_behind(backend: Backend) -> None:
    store = await backend.make()
    await store.write(Session("line:U1", {"count": 1}))

    async def work(key: str) -> None:
        async with store.checkout(key) as checkout:
            checkout.save(checkout.session or Session.new(key, {}))
        async with store.lock(key):
            await store.read(key)
        await store.claim_event(f"evt-{key}")

    await asyncio.gather(*(work(f"line:U{i}") for i in range(5)))
    await store.close()

    assert await backend.lock_residue() == []
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_the_driver_name_matches_the_config_key(backend: Backend) -> None:
    store = await backend.make()

    assert store.driver == backend.driver


async def test_sessions_survive_reopening_the_store(backend: Backend) -> None:
    if not backend.shared:
        pytest.skip("the memory store lives and dies with its process")
    store = await backend.make()
    now = time.time()
    await store.write(Session("line:U1", {"count": 7}, last_activity=now))
    await store.close()

    reopened = await backend.make()

    assert await reopened.read("line:U1") == Session("line:U1", {"count": 7}, last_activity=now)
