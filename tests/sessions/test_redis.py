"""The Redis driver: TTLs, outages, leases, and two round trips per event."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from redis.asyncio import Redis

from bottender.sessions.base import StoreError, StoreUnavailable
from bottender.sessions.redis import RedisStore
from bottender.sessions.session import Session
from tests.fixtures.servers import RedisProcess, free_port
from tests.sessions.drivers import (
    RedisBackend,
    expect_line,
    run_counters,
    start_worker,
    stop_worker,
)


async def pttl(backend: RedisBackend, key: str) -> int:
    redis = Redis.from_url(backend.url)
    try:
        return await redis.pttl(f"{backend.prefix}session:{key}")
    finally:
        await redis.aclose()


async def test_expires_in_sets_a_ttl_that_every_write_refreshes(
    redis_backend: RedisBackend,
) -> None:
    store = await redis_backend.make(expires_in=2)  # minutes
    await store.write(Session("line:U1", {"count": 1}))
    assert 119_000 < await pttl(redis_backend, "line:U1") <= 120_000

    redis = Redis.from_url(redis_backend.url)
    await redis.pexpire(f"{redis_backend.prefix}session:line:U1", 5_000)
    await redis.aclose()
    await store.write(Session("line:U1", {"count": 2}))
    assert await pttl(redis_backend, "line:U1") > 119_000

    await redis_backend.stores[0].close()
    store = await redis_backend.make(expires_in=0.5)
    async with store.checkout("line:U1") as checkout:
        assert checkout.session is not None
        checkout.save(checkout.session)
    assert 29_000 < await pttl(redis_backend, "line:U1") <= 30_000


async def test_without_expires_in_sessions_never_expire(redis_backend: RedisBackend) -> None:
    store = await redis_backend.make()

    await store.write(Session("line:U1"))

    assert await pttl(redis_backend, "line:U1") == -1


async def test_open_names_an_unreachable_server_without_its_password() -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    store = RedisStore(url)

    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        await store.open()

    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert re.search(r"redis://:\*\*\*@127\.0\.0\.1:\d+/0", message), message
    assert "s3cret" not in message


async def test_host_port_settings_are_used_without_a_url(redis_process: RedisProcess) -> None:
    store = RedisStore(host="127.0.0.1", port=redis_process.port, db=1, prefix="hp:")
    await store.open()
    await store.write(Session("line:U1", {"db": 1}))

    assert await store.read("line:U1") == Session("line:U1", {"db": 1})
    assert store.display_url == f"redis://127.0.0.1:{redis_process.port}/1"
    await store.close()


async def test_a_server_that_dies_fails_every_call_and_recovery_needs_no_reopen(
    redis_process: RedisProcess,
) -> None:
    store = RedisStore(redis_process.url)
    await store.open()
    await store.write(Session("line:U1", {"count": 1}))

    redis_process.kill()

    with pytest.raises(StoreError):
        await store.read("line:U1")  # an error, never "no session"
    with pytest.raises(StoreError):
        await store.write(Session("line:U1", {"count": 2}))
    with pytest.raises(StoreError):
        await store.claim_event("evt-1")
    with pytest.raises(StoreError):
        async with store.checkout("line:U1"):
            pass
    with pytest.raises(StoreError):
        [session async for session in store.all()]

    redis_process.start()  # empty: the test server keeps nothing on disk

    assert await store.read("line:U1") is None
    async with store.checkout("line:U1") as checkout:
        checkout.save(Session("line:U1", {"count": 3}))
    assert await store.read("line:U1") == Session("line:U1", {"count": 3})
    await store.close()


async def test_a_crashed_owners_lock_frees_itself_when_its_lease_runs_out(
    redis_backend: RedisBackend,
) -> None:
    store = await redis_backend.make(lock_lease=1.0)
    worker = start_worker(redis_backend, "hold", "line:U1", lock_lease=1.0)
    try:
        expect_line(worker, "locked")
        with pytest.raises(TimeoutError):  # the holder renews while it lives
            async with asyncio.timeout(1.5), store.lock("line:U1"):
                pass
    finally:
        stop_worker(worker)

    # Killed, it renews no more: its lease runs out and the lock is taken (a lock that
    # never expired would hit this generous bound).
    async with asyncio.timeout(15), store.lock("line:U1"):
        pass


async def test_a_lock_lost_before_the_write_refuses_to_write(
    redis_backend: RedisBackend,
) -> None:
    store = await redis_backend.make()
    await store.write(Session("line:U1", {"count": 1}))
    redis = Redis.from_url(redis_backend.url)

    with pytest.raises(StoreError, match="expired"):
        async with store.checkout("line:U1") as checkout:
            # The lease ran out and another process took the lock meanwhile.
            await redis.set(f"{redis_backend.prefix}lock:line:U1", "someone-else")
            checkout.save(Session("line:U1", {"count": 2}))

    await redis.aclose()
    assert await store.read("line:U1") == Session("line:U1", {"count": 1})


async def test_processes_sharing_the_server_lose_no_update(redis_backend: RedisBackend) -> None:
    store = await redis_backend.make()

    await asyncio.to_thread(run_counters, redis_backend, "line:U1", workers=4, times=25)

    stored = await store.read("line:U1")
    assert stored is not None and stored.state == {"n": 100}


async def test_an_event_costs_two_round_trips(redis_backend: RedisBackend) -> None:
    store = await redis_backend.make()
    async with store.checkout("line:U1") as checkout:  # loads the scripts
        checkout.save(Session("line:U1", {"count": 0}))
    watcher = Redis.from_url(redis_backend.url)
    sent: list[str] = []
    end_marker = f"{redis_backend.prefix}end-of-event"

    # MONITOR is on once the context is entered (redis-py waits for its OK); the server
    # shows commands in the order it runs them, so a marker sent after the event has
    # ended is seen after every command of the event.
    async with watcher.monitor() as monitor:

        async def watch() -> None:
            async for command in monitor.listen():
                if end_marker in command["command"]:
                    return
                if command["client_type"] != "lua" and redis_backend.prefix in command["command"]:
                    sent.append(command["command"].split()[0])

        watching = asyncio.create_task(watch())
        async with store.checkout("line:U1") as checkout:
            checkout.save(Session("line:U1", {"count": 1}))
        await watcher.echo(end_marker)
        await asyncio.wait_for(watching, timeout=10)
    await watcher.aclose()

    assert [command.upper() for command in sent] == ["EVALSHA", "EVALSHA"]


async def client_ports(backend: RedisBackend) -> set[str]:
    """The local ports of every client connected to the server right now."""
    redis = Redis.from_url(backend.url)
    try:
        return {client["addr"] for client in await redis.client_list()}
    finally:
        await redis.aclose()


async def test_the_checkouts_of_one_moment_share_one_connection(
    redis_backend: RedisBackend,
) -> None:
    """Commands issued in one turn of the event loop go out together (auto-pipelining)."""
    store = await redis_backend.make()
    before = await client_ports(redis_backend)

    async def count(key: str) -> None:
        async with store.checkout(key) as checkout:
            state = checkout.session.state if checkout.session else {"count": 0}
            checkout.save(Session(key, {"count": state["count"] + 1}))

    await asyncio.gather(*(count(f"telegram:{n}") for n in range(50)))
    await asyncio.gather(*(count(f"telegram:{n}") for n in range(50)))

    assert len((await client_ports(redis_backend)) - before) == 1
    sessions = {session.id: session.state async for session in store.all()}
    assert sessions == {f"telegram:{n}": {"count": 2} for n in range(50)}


async def test_scripts_the_server_forgot_are_loaded_again(redis_backend: RedisBackend) -> None:
    store = await redis_backend.make()
    await store.claim_event("telegram:1")
    redis = Redis.from_url(redis_backend.url)
    await redis.script_flush()  # as after a restart of the server
    await redis.aclose()

    async with store.checkout("line:U1") as checkout:
        checkout.save(Session("line:U1", {"count": 1}))

    assert (await store.read("line:U1")).state == {"count": 1}
    assert await store.claim_event("telegram:1") is False


async def test_anything_the_client_raises_fails_the_step_as_a_store_error(
    redis_backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py's cluster client can raise a bare IndexError or KeyError while a
    failover rebuilds its slot map; the event must get a 503, never a 500."""
    store = await redis_backend.make()
    redis = Redis.from_url(redis_backend.url)
    await redis.script_flush()  # the promoted replica of a failover has no scripts
    await redis.aclose()

    async def trips(*args: object) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(store._redis, "script_load", trips)
    with pytest.raises(StoreError, match="IndexError"):
        async with store.checkout("line:U1"):
            pass
    monkeypatch.undo()

    async with asyncio.timeout(1), store.checkout("line:U1") as checkout:
        checkout.save(Session("line:U1", {"count": 1}))
    assert (await store.read("line:U1")).state == {"count": 1}


async def test_one_commands_error_is_its_own_in_a_shared_batch(
    redis_backend: RedisBackend,
) -> None:
    store = await redis_backend.make()
    redis = Redis.from_url(redis_backend.url)
    # A value of the wrong type under a lock key: the script on it fails, the others run.
    await redis.rpush(f"{redis_backend.prefix}lock:line:Ubroken", "not a token")
    await redis.aclose()

    async def save(key: str) -> None:
        async with store.checkout(key) as checkout:
            checkout.save(Session(key, {"saved": True}))

    results = await asyncio.gather(
        save("line:U1"), save("line:Ubroken"), save("line:U2"), return_exceptions=True
    )

    assert results[0] is None and results[2] is None
    assert isinstance(results[1], StoreError) and "WRONGTYPE" in str(results[1])
    assert (await store.read("line:U2")).state == {"saved": True}


async def test_keys_of_sessions_locks_and_claims_never_collide(
    redis_backend: RedisBackend,
) -> None:
    store = await redis_backend.make()
    await store.write(Session("lock:line:U1", {"looks": "like a lock"}))
    await store.write(Session("event:1", {"looks": "like a claim"}))

    async with store.lock("line:U1"):
        assert await store.claim_event("1") is True
        assert await store.read("lock:line:U1") == Session("lock:line:U1", {"looks": "like a lock"})
    assert {session.id async for session in store.all()} == {"lock:line:U1", "event:1"}


async def test_a_prefix_with_glob_characters_lists_only_its_own_sessions(
    redis_backend: RedisBackend,
) -> None:
    starred = await redis_backend.make(prefix=redis_backend.prefix + "*:")
    plain = await redis_backend.make(prefix=redis_backend.prefix + "x:")
    await starred.write(Session("line:U1"))
    await plain.write(Session("line:U2"))

    assert [session.id async for session in starred.all()] == ["line:U1"]


async def test_a_store_used_before_open_says_so() -> None:
    with pytest.raises(StoreError, match="not open"):
        await RedisStore().read("line:U1")


async def test_a_corrupt_session_is_an_error_and_leaves_the_lock_free(
    redis_backend: RedisBackend,
) -> None:
    store = await redis_backend.make()
    redis = Redis.from_url(redis_backend.url)
    await redis.set(f"{redis_backend.prefix}session:line:U1", b"{not json")
    await redis.aclose()

    with pytest.raises(StoreError, match="corrupt"):
        await store.read("line:U1")
    with pytest.raises(StoreError, match="corrupt"):
        async with store.checkout("line:U1"):
            pass

    async with asyncio.timeout(1), store.lock("line:U1"):
        pass
