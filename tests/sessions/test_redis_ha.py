"""The redis driver on a Redis Cluster and behind Sentinel: key names, fencing, safe retries.

What protects a session when a failover loses a lock (replication is
asynchronous, so a lock written to a master that dies before replicating it is
gone on the promoted replica): every write script checks the owner token, so
the holder whose lock vanished cannot write over whoever took the session
next. Its event fails (503) and the platform's redelivery runs it again on the
fresh session. These tests make the lock vanish by deleting it, as such a
failover would, on one server, a Cluster and Sentinel alike.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio.connection import Connection

from bottender.sessions.base import StoreError
from bottender.sessions.redis import CLAIM, RedisStore
from bottender.sessions.session import Session
from tests.fixtures.cluster_nodes import BUS_OFFSET, ReservedPorts, node_pid
from tests.fixtures.redis_ha import SERVICE, ClusterServers, _binary
from tests.sessions.drivers import RedisBackend, RedisClusterBackend, RedisSentinelBackend

TOPOLOGIES = ["redis", "redis-cluster", "redis-sentinel"]


@pytest.fixture(params=TOPOLOGIES)
async def any_redis(request: pytest.FixtureRequest) -> AsyncIterator[RedisBackend]:
    if request.param == "redis":
        made = RedisBackend(request.getfixturevalue("redis_server"))
    elif request.param == "redis-cluster":
        made = RedisClusterBackend(request.getfixturevalue("redis_cluster").url)
    else:
        made = RedisSentinelBackend(request.getfixturevalue("redis_sentinel").addresses, SERVICE)
    yield made
    await made.cleanup()


async def lose_the_lock(backend: RedisBackend, key: str) -> None:
    """What a failover does to a lock the old master never replicated."""
    (lock,) = await backend.keys("lock:*")
    assert key.encode() in lock
    client = backend.client()
    try:
        assert await client.delete(lock) == 1
    finally:
        await client.aclose()


async def count(store: RedisStore, key: str) -> int:
    session = await store.read(key)
    return 0 if session is None else session.state["n"]


async def test_a_holder_whose_lock_vanished_cannot_overwrite_the_next_holder(
    any_redis: RedisBackend,
) -> None:
    first, second = await any_redis.make(), await any_redis.make()
    await first.write(Session("line:U1", {"n": 0}))

    with pytest.raises(StoreError, match="expired before it was written"):
        async with first.checkout("line:U1") as stale:
            await lose_the_lock(any_redis, "line:U1")
            async with second.checkout("line:U1") as fresh:  # not kept waiting: the lock is gone
                assert fresh.session is not None
                fresh.session.state["n"] += 1
                fresh.save(fresh.session)
            assert stale.session is not None
            stale.session.state["n"] += 1
            stale.save(stale.session)

    assert await count(second, "line:U1") == 1
    # The platform redelivers the refused event; it runs on what the store holds now.
    async with first.checkout("line:U1") as again:
        assert again.session is not None
        again.session.state["n"] += 1
        again.save(again.session)
    assert await count(second, "line:U1") == 2
    assert await any_redis.lock_residue() == []


async def test_a_lost_lock_refuses_the_write_even_when_nobody_else_came(
    any_redis: RedisBackend,
) -> None:
    store = await any_redis.make()
    await store.write(Session("line:U1", {"n": 5}))

    with pytest.raises(StoreError):
        async with store.checkout("line:U1") as checkout:
            await lose_the_lock(any_redis, "line:U1")
            checkout.save(Session("line:U1", {"n": 6}))

    assert await count(store, "line:U1") == 5


async def test_a_write_sent_again_after_it_landed_changes_nothing(
    any_redis: RedisBackend,
) -> None:
    store = await any_redis.make()
    token = "retrying-owner"
    assert await store._try_acquire("line:U1", token, read=True) is not None
    session = Session("line:U1", {"n": 1}, handled={"update-1": 1.0})

    assert await store._write_release("line:U1", token, session) is True
    # The same script again, as a retry after a lost reply sends it: the lock it
    # released is gone, so it is refused (503); the redelivery finds update-1 handled.
    assert await store._write_release("line:U1", token, session) is False
    stored = await store.read("line:U1")
    assert stored is not None and stored.has_handled("update-1")
    assert await count(store, "line:U1") == 1


async def test_an_event_claim_sent_again_is_still_its_claimants(any_redis: RedisBackend) -> None:
    store = await any_redis.make()
    key = store._key("event", "update-7")
    now = store._clock()
    args = [repr(now), repr(now + 60), 60_000, "claimant-a"]

    assert await store._run(CLAIM, [key], args) == 1
    assert await store._run(CLAIM, [key], args) == 1  # a retry of the same claim
    assert await store._run(CLAIM, [key], [*args[:3], "claimant-b"]) == 0
    assert await store.claim_event("update-8") is True
    assert await store.claim_event("update-8") is False  # a redelivery


async def test_cluster_keys_carry_the_session_id_as_a_hash_tag(
    redis_cluster: ClusterServers,
) -> None:
    backend = RedisClusterBackend(redis_cluster.url)
    try:
        store = await backend.make()
        ids = [f"telegram:{chat}" for chat in range(30)]
        for session_id in ids:
            async with store.checkout(session_id) as checkout:
                checkout.save(Session(session_id, {"n": 1}))

        names = sorted(key.decode() for key in await backend.keys())
        assert names == sorted(f"{backend.prefix}session:{{{i}}}" for i in ids)
        masters = {redis_cluster.master_of(name).port for name in names}
        assert len(masters) == 3, "30 sessions spread over every master"
        assert sorted([s.id async for s in store.all()]) == sorted(ids)  # SCAN on each master
        assert store._key("lock", "line:U1") == f"{backend.prefix}lock:{{line:U1}}"
    finally:
        await backend.cleanup()


async def test_a_single_server_keeps_todays_key_names(redis_server: str) -> None:
    store = RedisStore(redis_server, prefix="p:")

    assert store._key("session", "line:U1") == "p:session:line:U1"
    assert store._key("lock", "line:U1") == "p:lock:line:U1"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cluster": True, "sentinels": [["h", 1]], "service_name": "m"}, "either cluster"),
        ({"sentinels": [["127.0.0.1", 26379]]}, "sentinels need service_name"),
        ({"service_name": "mymaster"}, "service_name needs sentinels"),
        ({"sentinels": [["127.0.0.1"]], "service_name": "m"}, "sentinels: expected"),
        ({"cluster": True, "db": 2}, "only db 0"),
        ({"cluster": True, "prefix": "{app}:"}, "no braces"),
    ],
)
def test_a_topology_that_cannot_work_is_refused_naming_the_option(
    options: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RedisStore(**options)


def test_the_url_shown_names_the_topology_without_its_password() -> None:
    sentinel = RedisStore(sentinels=[["10.0.0.1", 26379], "10.0.0.2:26379"], service_name="m")
    nodes = RedisStore(startup_nodes=[["10.0.0.1", 7000], ["10.0.0.2", 7001]])
    cluster = RedisStore("redis://:s3cret@10.0.0.1:7000", cluster=True)

    assert sentinel.display_url == "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/m"
    assert nodes.display_url == "redis+cluster://10.0.0.1:7000,10.0.0.2:7001"
    assert cluster.display_url == "redis://:***@10.0.0.1:7000 (cluster)"
    assert (sentinel.topology, nodes.topology, cluster.topology) == (
        "sentinel",
        "cluster",
        "cluster",
    )


async def test_an_unreachable_cluster_or_sentinel_is_named_at_open() -> None:
    from bottender.sessions.base import StoreUnavailable
    from tests.fixtures.servers import free_port

    port = free_port()
    for store in (
        RedisStore(startup_nodes=[["127.0.0.1", port]]),
        RedisStore(sentinels=[["127.0.0.1", port]], service_name="mymaster"),
    ):
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}"):
            await store.open()


async def test_a_cluster_joined_by_cluster_commands_alone_serves_sessions(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where no redis-cli exists, the fixture joins the nodes with CLUSTER MEET and friends."""
    monkeypatch.setenv("BOTTENDER_TEST_CLUSTER_BY_COMMANDS", "1")
    cluster = ClusterServers(_binary(), tmp_path)
    try:
        await asyncio.to_thread(cluster.start)
        assert len(cluster.masters()) == 3
        assert all(len(cluster.replicas_of(master)) == 1 for master in cluster.masters())
        store = RedisStore(startup_nodes=cluster.startup_nodes, prefix="joined:")
        await store.open()
        try:
            for chat in range(12):
                async with store.checkout(f"telegram:{chat}") as checkout:
                    checkout.save(Session(f"telegram:{chat}", {"n": chat}))
            assert sorted([s.state["n"] async for s in store.all()]) == list(range(12))
        finally:
            await store.close()
    finally:
        cluster.stop()


def test_a_clusters_ports_and_bus_ports_are_distinct_and_held_for_its_nodes() -> None:
    """A port picked and let go can be handed out again, to the next node or as its bus port."""
    reserved = ReservedPorts(6)
    try:
        every = reserved.ports + [port + BUS_OFFSET for port in reserved.ports]
        assert len(set(every)) == 12
        for port in every:
            with socket.socket() as sock, pytest.raises(OSError):
                sock.bind(("127.0.0.1", port))
    finally:
        reserved.release()
    for port in every:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_cluster_node_restarts_on_its_held_ports(tmp_path) -> None:
    cluster = ClusterServers(_binary(), tmp_path)
    try:
        cluster.start_nodes()
        node = cluster.nodes[0]
        node.kill()
        with socket.socket() as sock, pytest.raises(OSError):  # still ours while it is down
            sock.bind(("127.0.0.1", node.port))
        cluster.start_nodes()
        assert node_pid(node.port) == node.process.pid
    finally:
        cluster.stop()


def test_a_node_that_could_not_listen_is_named_not_mistaken_for_the_one_that_did(
    tmp_path,
) -> None:
    """Two nodes on one port used to pass for two nodes, and the cluster never settled."""
    cluster = ClusterServers(_binary(), tmp_path)
    cluster.nodes[1].port = cluster.nodes[0].port
    try:
        with pytest.raises(pytest.fail.Exception) as failed:
            cluster.start_nodes()
    finally:
        cluster.stop()
    message = str(failed.value)
    assert f"cluster-1: 127.0.0.1:{cluster.nodes[0].port}" in message
    assert "Address already in use" in message


def test_a_cluster_that_never_settles_fails_with_what_each_node_sees(tmp_path) -> None:
    """The start-up failure message is enough to tell why from CI output alone."""
    cluster = ClusterServers(_binary(), tmp_path)
    try:
        cluster.start_nodes()  # never joined: every node is alone, with no slots
        with pytest.raises(pytest.fail.Exception) as failed:
            cluster.wait_ok(timeout=0.5)
    finally:
        cluster.stop()
    message = str(failed.value)
    assert "waiting for cluster_state:ok on every node" in message
    assert "cluster-0 (127.0.0.1:" in message and "is not cluster_state:ok" in message
    for node in cluster.nodes:
        assert f"127.0.0.1:{node.port}: state=fail slots_assigned=0" in message
    assert message.count("myself,master") == 6  # each node's own CLUSTER NODES


# --- a failover's slot-map rebuild closes connections under the driver ---


def close_under_the_next(monkeypatch: pytest.MonkeyPatch, what: bytes = b"") -> list[bytes]:
    """The next write (containing ``what``) finds its connection closed by the cluster client.

    While a failover rebuilds the slot map, redis-py's cluster client closes
    every connection of every node (``RedisCluster.aclose`` on CLUSTERDOWN),
    including one another task is about to write on: redis-py then fails with
    a bare AttributeError (its writer is gone). Here that close happens exactly
    there, once, so the race is not left to chance. Returns the writes it tripped.
    """
    original = Connection._send_packed_command
    tripped: list[bytes] = []

    async def closed_by_the_client_first(connection: Connection, command: Any) -> None:
        data = b"".join(command)
        if not tripped and what in data:
            tripped.append(data)
            await connection.disconnect()  # what RedisCluster.aclose does to each connection
        await original(connection, command)

    monkeypatch.setattr(Connection, "_send_packed_command", closed_by_the_client_first)
    return tripped


@pytest.mark.parametrize("any_redis", ["redis-cluster"], indirect=True)
async def test_a_connection_the_cluster_client_closes_under_a_batch_is_sent_again(
    any_redis: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen as a 500 (then a 503) mid-failover: now the batch goes out again, as after MOVED."""
    store = await any_redis.make()
    tripped = close_under_the_next(monkeypatch)

    async with asyncio.timeout(10), store.checkout("line:U1") as checkout:
        checkout.save(Session("line:U1", {"n": 1}))

    assert tripped, "the write was tripped"
    assert await count(store, "line:U1") == 1


@pytest.mark.parametrize("any_redis", ["redis-cluster"], indirect=True)
async def test_a_script_reload_the_cluster_client_trips_over_is_retried(
    any_redis: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A promoted replica may lack our scripts: their reload rides out the same race."""
    store = await any_redis.make()
    client = any_redis.client()
    try:
        await client.script_flush()  # on every master
    finally:
        await client.aclose()
    tripped = close_under_the_next(monkeypatch, b"SCRIPT")

    async with asyncio.timeout(10), store.checkout("line:U1") as checkout:
        checkout.save(Session("line:U1", {"n": 1}))

    assert tripped, "the script reload was tripped"
    assert await count(store, "line:U1") == 1


# --- replica_acks: a write counts only once replicas confirm it (WAIT) ---


def replica_of_the_master_of(request: pytest.FixtureRequest, backend: RedisBackend, key: str):
    """The replica process that copies ``key``'s master, and how to wait until it is back."""
    if isinstance(backend, RedisClusterBackend):
        cluster = request.getfixturevalue("redis_cluster")
        (replica,) = cluster.replicas_of(cluster.master_of(f"{backend.prefix}session:{{{key}}}"))
        return replica, cluster.wait_ok
    sentinel = request.getfixturevalue("redis_sentinel")
    return sentinel.replica, lambda: sentinel.wait_settled(sentinel.master)


@pytest.mark.parametrize("any_redis", ["redis-cluster", "redis-sentinel"], indirect=True)
async def test_a_write_no_replica_confirmed_is_refused_and_recognised_on_redelivery(
    any_redis: RedisBackend, request: pytest.FixtureRequest
) -> None:
    store = await any_redis.make(replica_acks=1, replica_ack_timeout=0.3)
    async with store.checkout("line:U1") as checkout:  # the replica is there: confirmed
        checkout.save(Session("line:U1", {"n": 1}))
    replica, wait_back = replica_of_the_master_of(request, any_redis, "line:U1")

    replica.process.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(StoreError, match="may not survive a failover"):
            async with store.checkout("line:U1") as checkout:
                checkout.save(Session("line:U1", {"n": 2}, handled={"update-2": 1.0}))
    finally:
        replica.process.send_signal(signal.SIGCONT)
    await asyncio.to_thread(wait_back)

    # The master did apply it: the platform's redelivery finds update-2 handled and skips it
    # (had the master failed over first, the redelivery would find n=1 and run again).
    stored = await store.read("line:U1")
    assert stored is not None and stored.has_handled("update-2")
    async with store.checkout("line:U1") as checkout:
        checkout.save(Session("line:U1", {"n": 3}))
    assert await count(store, "line:U1") == 3


async def test_replica_acks_on_a_server_without_replicas_refuses_every_write(
    redis_backend: RedisBackend,
) -> None:
    store = await redis_backend.make(replica_acks=1, replica_ack_timeout=0.05)

    with pytest.raises(StoreError, match="reached 0 of the 1 replica"):
        async with store.checkout("line:U1") as checkout:
            checkout.save(Session("line:U1", {"n": 1}))
    assert await redis_backend.lock_residue() == []


@pytest.mark.parametrize("acks", [-1, 1.5, "2"])
def test_replica_acks_must_be_a_whole_number(acks: object) -> None:
    with pytest.raises(ValueError, match="replica_acks"):
        RedisStore(replica_acks=acks)  # type: ignore[arg-type]
