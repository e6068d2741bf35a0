"""The operator's primitives of the store contract, on every driver:
``list_sessions`` streams with a limit, ``delete`` takes the session's lock."""

from __future__ import annotations

import asyncio

from bottender.sessions.session import Session
from tests.sessions.drivers import Backend


async def test_list_sessions_yields_every_session_or_at_most_the_limit(backend: Backend) -> None:
    store = await backend.make()
    for number in range(12):
        await store.write(Session(f"telegram:{number}", {"n": number}))

    everything = [s async for s in store.list_sessions()]
    assert sorted(s.state["n"] for s in everything) == list(range(12))
    assert len([s async for s in store.list_sessions(limit=5)]) == 5
    assert [s async for s in store.list_sessions(limit=0)] == []


async def test_a_listing_stopped_early_leaves_the_store_usable(backend: Backend) -> None:
    store = await backend.make()
    for number in range(3):
        await store.write(Session(f"line:U{number}", {"n": number}))
    async for _ in store.list_sessions():
        break
    assert (await store.read("line:U1")).state == {"n": 1}


async def test_delete_says_whether_there_was_a_session(backend: Backend) -> None:
    store = await backend.make()
    await store.write(Session("line:U1", {"n": 1}))

    assert await store.delete("line:U1") is True
    assert await store.read("line:U1") is None
    assert await store.delete("line:U1") is False
    assert await backend.lock_residue() == []


async def test_delete_waits_for_an_event_holding_the_lock_and_then_erases_its_write(
    backend: Backend,
) -> None:
    """Without the lock the delete would run first and the event's write bring it back."""
    holder = await backend.make()
    operator = await backend.make() if backend.shared else holder
    await holder.write(Session("line:U1", {"n": 1}))

    async with holder.checkout("line:U1") as checkout:
        deleting = asyncio.create_task(operator.delete("line:U1"))
        for _ in range(100):
            await asyncio.sleep(0)
        assert not deleting.done()
        checkout.save(Session("line:U1", {"n": 2}))

    assert await deleting is True
    assert await holder.read("line:U1") is None
    assert await backend.lock_residue() == []


async def test_the_file_store_lists_a_batch_at_a_time(file_backend: Backend, monkeypatch) -> None:
    """Files are read a batch at a time: sessions deleted after the first batch are not seen,
    so a listing never holds more than a batch of sessions in memory."""
    from bottender.sessions import file

    monkeypatch.setattr(file, "LIST_BATCH", 2)
    store = await file_backend.make()
    for number in range(6):
        await store.write(Session(f"line:U{number}", {"n": number}))

    seen = []
    async for session in store.list_sessions():
        seen.append(session.id)
        if len(seen) == 1:
            for number in range(6):
                await store.destroy(f"line:U{number}")
    assert len(seen) == 2
