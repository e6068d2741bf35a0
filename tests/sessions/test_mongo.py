"""The MongoDB driver: TTL index, expiry at read, outages, leases, two round trips per event."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from bottender.sessions.base import StoreError, StoreUnavailable
from bottender.sessions.mongo import MongoStore
from bottender.sessions.session import Session
from tests.fixtures.servers import MongoProcess, free_port
from tests.sessions.drivers import (
    FakeClock,
    MongoBackend,
    expect_line,
    run_counters,
    start_worker,
    stop_worker,
)


@pytest.fixture
async def client(mongo_backend: MongoBackend) -> AsyncIterator[AsyncMongoClient]:
    client = mongo_backend.client()
    yield client
    await client.close()


def documents(client: AsyncMongoClient, backend: MongoBackend) -> Any:
    return client["bottender"][backend.collection]


async def test_expires_in_is_a_ttl_index_kept_in_step_with_the_setting(
    mongo_backend: MongoBackend, client: AsyncMongoClient
) -> None:
    collection = documents(client, mongo_backend)

    await mongo_backend.make(expires_in=15)
    indexes = await collection.index_information()
    assert indexes["touched_at_ttl"]["key"] == [("touched_at", 1)]
    assert indexes["touched_at_ttl"]["expireAfterSeconds"] == 900

    await mongo_backend.make(expires_in=0.5)
    assert (await collection.index_information())["touched_at_ttl"]["expireAfterSeconds"] == 30

    await mongo_backend.make(expires_in=None)
    assert "touched_at_ttl" not in await collection.index_information()


async def test_event_claims_carry_a_ttl_index(
    mongo_backend: MongoBackend, client: AsyncMongoClient
) -> None:
    await mongo_backend.make()

    events = client["bottender"][f"{mongo_backend.collection}_events"]
    assert (await events.index_information())["expires_at_ttl"]["expireAfterSeconds"] == 0


async def test_an_expired_session_reads_as_none_before_any_ttl_sweep(
    mongo_backend: MongoBackend, clock: FakeClock
) -> None:
    store = await mongo_backend.make(expires_in=15, clock=clock)
    await store.write(Session("line:U1", {"count": 1}, last_activity=clock()))

    clock.advance(15 * 60 - 1)
    assert await store.read("line:U1") is not None

    clock.advance(2)
    assert await store.read("line:U1") is None
    assert [session async for session in store.all()] == []
    async with store.checkout("line:U1") as checkout:
        assert checkout.session is None
        checkout.save(Session("line:U1", {"count": 0}, last_activity=clock()))
    assert await store.read("line:U1") == Session("line:U1", {"count": 0}, last_activity=clock())


async def test_open_names_an_unreachable_server_without_its_password() -> None:
    url = f"mongodb://bot:s3cret@127.0.0.1:{free_port()}/bottender?serverSelectionTimeoutMS=300"
    store = MongoStore(url)

    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        await store.open()

    assert time.monotonic() - started < 3
    message = str(raised.value)
    assert re.search(r"mongodb://bot:\*\*\*@127\.0\.0\.1:\d+/bottender", message), message
    assert "s3cret" not in message


async def test_a_server_that_dies_fails_every_call_and_recovery_needs_no_reopen(
    mongo_process: MongoProcess,
) -> None:
    store = MongoStore(f"{mongo_process.url}/bottender?serverSelectionTimeoutMS=300")
    await store.open()
    await store.write(Session("line:U1", {"count": 1}))

    mongo_process.kill()

    with pytest.raises(StoreError):
        await store.read("line:U1")  # an error, never "no session"
    with pytest.raises(StoreError):
        async with store.checkout("line:U1"):
            pass
    with pytest.raises(StoreError):
        await store.claim_event("evt-1")

    mongo_process.start()  # empty: the test server keeps nothing

    assert await store.read("line:U1") is None
    async with store.checkout("line:U1") as checkout:
        checkout.save(Session("line:U1", {"count": 3}))
    assert await store.read("line:U1") == Session("line:U1", {"count": 3})
    await store.close()


async def test_the_database_comes_from_the_url_path(
    mongo_server: str, client: AsyncMongoClient
) -> None:
    store = MongoStore(f"{mongo_server}/bot_db_test", collection_name="named")
    await store.open()
    await store.write(Session("line:U1"))
    await store.close()

    assert await client["bot_db_test"]["named"].find_one({"_id": "line:U1"}) is not None
    await client.drop_database("bot_db_test")


async def test_a_session_is_stored_as_a_queryable_document(
    mongo_backend: MongoBackend, client: AsyncMongoClient
) -> None:
    store = await mongo_backend.make()

    await store.write(Session("line:U1", {"profile": {"city": "Taipei"}}))

    found = await documents(client, mongo_backend).find_one(
        {"session.state.profile.city": "Taipei"}
    )
    assert found is not None and found["_id"] == "line:U1"


async def test_a_lock_on_a_new_session_leaves_no_document(
    mongo_backend: MongoBackend, client: AsyncMongoClient
) -> None:
    store = await mongo_backend.make()

    async with store.lock("line:Unew"):
        pass
    async with store.checkout("line:Unew2"):
        pass

    assert await documents(client, mongo_backend).count_documents({}) == 0


async def test_destroying_a_locked_session_keeps_the_lock(mongo_backend: MongoBackend) -> None:
    holder, other = await mongo_backend.make(), await mongo_backend.make()
    await holder.write(Session("line:U1", {"count": 1}))

    async with holder.lock("line:U1"):
        await other.destroy("line:U1")
        assert await other.read("line:U1") is None
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2), other.lock("line:U1"):
                pass

    async with asyncio.timeout(2), other.lock("line:U1"):
        pass


async def test_a_crashed_owners_lock_frees_itself_when_its_lease_runs_out(
    mongo_backend: MongoBackend, clock: FakeClock
) -> None:
    store = await mongo_backend.make(clock=clock, lock_lease=30)
    worker = start_worker(mongo_backend, "hold", "line:U1", lock_lease=30)
    try:
        expect_line(worker, "locked")
    finally:
        stop_worker(worker)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2), store.lock("line:U1"):
            pass
    # The worker wrote its lease with its own (real) clock when it said "locked", however
    # long after this test's clock was set that was: go past that lease, not past ours.
    clock.now = time.time() + 31
    async with asyncio.timeout(10), store.lock("line:U1"):
        pass


async def test_a_lock_lost_before_the_write_refuses_to_write(
    mongo_backend: MongoBackend, client: AsyncMongoClient
) -> None:
    store = await mongo_backend.make()
    await store.write(Session("line:U1", {"count": 1}))

    with pytest.raises(StoreError, match="expired"):
        async with store.checkout("line:U1") as checkout:
            await documents(client, mongo_backend).update_one(
                {"_id": "line:U1"}, {"$set": {"lock_owner": "someone-else"}}
            )
            checkout.save(Session("line:U1", {"count": 2}))

    stored = await documents(client, mongo_backend).find_one({"_id": "line:U1"})
    assert stored is not None and stored["session"]["state"] == {"count": 1}


async def test_processes_sharing_the_server_lose_no_update(mongo_backend: MongoBackend) -> None:
    store = await mongo_backend.make()

    await asyncio.to_thread(run_counters, mongo_backend, "line:U1", workers=4, times=25)

    stored = await store.read("line:U1")
    assert stored is not None and stored.state == {"n": 100}


class CommandLog(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_an_event_costs_two_round_trips_and_a_given_client_stays_open(
    mongo_backend: MongoBackend,
) -> None:
    log = CommandLog()
    client = AsyncMongoClient(mongo_backend.url, event_listeners=[log])
    store = await mongo_backend.make(client=client)
    await store.write(Session("line:U1", {"count": 0}))

    log.names.clear()
    async with store.checkout("line:U1") as checkout:
        assert checkout.session is not None
        checkout.save(Session("line:U1", {"count": 1}))
    assert log.names == ["findAndModify", "update"]

    await store.close()
    assert await client["bottender"][mongo_backend.collection].count_documents({}) == 1
    await client.close()


async def test_a_motor_client_handed_in_works_where_its_calls_coincide(
    mongo_backend: MongoBackend,
) -> None:
    """Motor reached its end of life in May 2026, but bots still hand in its clients."""
    from motor.motor_asyncio import AsyncIOMotorClient

    client = AsyncIOMotorClient(mongo_backend.url, serverSelectionTimeoutMS=3000)
    store = await mongo_backend.make(client=client, expires_in=5)

    async with store.checkout("line:U1") as checkout:
        assert checkout.session is None
        checkout.save(Session("line:U1", {"count": 1}, last_activity=time.time()))
    async with store.checkout("line:U1") as checkout:
        assert checkout.session is not None and checkout.session.state == {"count": 1}
    assert await store.claim_event("line:evt-1") is True
    assert await store.claim_event("line:evt-1") is False
    assert [session.id async for session in store.all()] == ["line:U1"]
    await store.destroy("line:U1")
    assert await store.read("line:U1") is None

    await store.close()
    assert await client.admin.command("ping")  # the caller's client stays open
    client.close()


async def test_a_store_used_before_open_says_so() -> None:
    with pytest.raises(StoreError, match="not open"):
        await MongoStore().read("line:U1")


def test_a_url_that_is_not_mongodb_is_refused() -> None:
    with pytest.raises(ValueError, match="not a MongoDB URL"):
        MongoStore("redis://localhost:6379/0")


async def test_a_corrupt_session_is_an_error_and_leaves_the_lock_free(
    mongo_backend: MongoBackend, client: AsyncMongoClient
) -> None:
    store = await mongo_backend.make()
    await documents(client, mongo_backend).insert_one({"_id": "line:U1", "session": {"state": 1}})

    with pytest.raises(StoreError, match="corrupt"):
        await store.read("line:U1")
    with pytest.raises(StoreError, match="corrupt"):
        async with store.checkout("line:U1"):
            pass

    async with asyncio.timeout(1), store.lock("line:U1"):
        pass


@pytest.mark.parametrize(
    "value",
    [2**63, -(2**63) - 1, {"a", "set"}],
    ids=["past int64", "below int64", "not BSON"],
)
async def test_a_session_bson_cannot_encode_is_a_store_error_and_leaves_the_lock_free(
    mongo_backend: MongoBackend, value: Any
) -> None:
    """set_state refuses such values first; a session written around it still gets a 503."""
    store = await mongo_backend.make()
    unencodable = Session("line:U1", {"count": value})

    with pytest.raises(StoreError, match="writing session 'line:U1' failed"):
        await store.write(unencodable)
    with pytest.raises(StoreError, match="writing session 'line:U1' failed"):
        async with store.checkout("line:U1") as checkout:
            checkout.save(unencodable)

    assert await store.read("line:U1") is None  # nothing half-written
    async with asyncio.timeout(1), store.lock("line:U1"):
        pass


# --- Replica sets: what an election may do to an event in flight ---
# The MongoDB-compatible test server is a single node that reports no replica set, so an
# election itself cannot be played here; what can be checked is the write concern and the
# retryable writes the driver asks for, and that replica-set URLs are taken as they are.


class SentWrites(monitoring.CommandListener):
    """Every write command the client sends, with the write concern it carried."""

    def __init__(self) -> None:
        self.concerns: list[tuple[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("findAndModify", "update", "delete", "insert"):
            self.concerns.append((event.command_name, event.command.get("writeConcern")))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_writes_wait_for_a_majority_and_are_retryable_by_default(
    mongo_backend: MongoBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = SentWrites()
    made = []

    def client_with_listener(url: str, **options: Any) -> AsyncMongoClient:
        made.append(options)
        return AsyncMongoClient(url, event_listeners=[listener], **options)

    monkeypatch.setattr("bottender.sessions.mongo.AsyncMongoClient", client_with_listener)
    store = await mongo_backend.make()
    async with store.checkout("line:U1") as checkout:
        checkout.save(Session("line:U1", {"count": 1}))

    assert made[0]["w"] == "majority" and made[0]["retryWrites"] is True
    assert [name for name, _ in listener.concerns] == ["findAndModify", "update"]
    assert all(concern == {"w": "majority"} for _, concern in listener.concerns)
    assert await store.read("line:U1") == Session("line:U1", {"count": 1}, handled={})


async def test_a_url_that_sets_its_write_concern_keeps_it(mongo_server: str) -> None:
    store = MongoStore(f"{mongo_server}/bottender?w=1&retryWrites=false", collection_name="wc")
    await store.open()
    try:
        assert store._client.write_concern.document == {"w": 1}
        assert store._client.options.retry_writes is False
        await store.write(Session("line:U1"))
        assert await store.read("line:U1") == Session("line:U1")
    finally:
        await store._sessions.drop()
        await store.close()


async def test_a_replica_set_url_with_w_majority_is_taken_as_written(mongo_server: str) -> None:
    host = mongo_server.removeprefix("mongodb://").rstrip("/")
    url = f"mongodb://{host}/bottender?replicaSet=rs0&w=majority&serverSelectionTimeoutMS=300"
    store = MongoStore(url)

    # The test server is no member of rs0, so the driver finds no primary of that set.
    with pytest.raises(StoreUnavailable, match=r"replicaSet=rs0.*rs0"):
        await store.open()
