"""The Redis driver: sessions shared by every process that reaches one Redis.

Keys live under ``prefix`` in three namespaces, so sessions, locks and event
claims can never be mistaken for one another whatever a session id contains::

    {prefix}session:{id}   the session, compact JSON, PX ``expires_in`` refreshed on write
    {prefix}lock:{id}      the owner token of the session's lock, PX ``lock_lease``
    {prefix}event:{id}     a handled event's expiry time and claimant, PX ``event_ttl``

On a Redis Cluster the id is wrapped in braces, a hash tag
(``bottender:session:{line:U1}``, ``bottender:lock:{line:U1}``), so every key of
one session hashes to one slot and each script runs on one node; on one server
(or Sentinel) the names stay as above. :meth:`RedisStore._key`
is the one place that names keys: anything stored per session goes through it.

Every multi-step operation is a Lua script, so it is atomic on the server and
costs one round trip: an event normally takes two (lock+read, write+unlock).
Each script is safe to run twice, which is what lets a step that failed on a
failover (lost connection, READONLY, CLUSTERDOWN, MOVED) be retried:

* the lock scripts check the owner token, so a write whose lock vanished is
  refused rather than applied (the event gets 503 and the platform redelivers);
* a write retried after its first attempt did land finds its lock released and
  is refused too: the redelivery then finds the event's delivery id in the
  session and is acknowledged without running again;
* an event claim records its claimant, so a retried claim is still ours.

A write the master applied can still be lost with it in a failover; with
``replica_acks`` a session write also waits (``WAIT``) until that many
replicas have it, and fails (503, redelivery) when they do not confirm it.

Where the topology is chosen (one server, Cluster, Sentinel): redis_topology.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    ClusterError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from bottender.sessions.base import (
    DEFAULT_EVENT_TTL_SECONDS,
    Inbox,
    StoreError,
    StoreUnavailable,
)
from bottender.sessions.leases import (
    DEFAULT_LOCK_LEASE_SECONDS,
    Acquired,
    LeasedStore,
    new_token,
)
from bottender.sessions.redis_pipeline import AutoPipeline, ClusterAutoPipeline, Script
from bottender.sessions.redis_topology import Topology
from bottender.sessions.session import Session

logger = logging.getLogger(__name__)

#: A dead server must fail the request quickly (503, the platform retries) rather than hang it.
SOCKET_CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 5.0
SCAN_BATCH = 500
#: On a Cluster or behind Sentinel, a script that failed because a node failed
#: over is sent again (the scripts are safe to repeat), at most this many times
#: and not after ``STEP_RETRY_WINDOW`` seconds, before the event gets its 503.
STEP_ATTEMPTS = 3
STEP_RETRY_WINDOW = 2.0
FAILOVER_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    TryAgainError,
    ClusterError,
    RedisClusterException,
)

# Re-taking a lock we already own is allowed, so a command retried after a lost
# reply does not lock us out of our own session until the lease runs out.
ACQUIRE = Script(
    """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return false end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] == '1' then
  local value = redis.call('GET', KEYS[2])
  if value then return {1, value} end
end
return {0}
"""
)
WRITE_RELEASE = Script(
    """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('SET', KEYS[2], ARGV[2])
else
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
redis.call('DEL', KEYS[1])
return 1
"""
)
RELEASE = Script(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
)
RENEW = Script(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
)
# The expiry is decided by the store's clock (so tests can inject one); the
# key's own TTL only cleans up claims that are already dead.
# A claim is "<expiry> <claimant>"; the claimant's own retry finds it still theirs.
CLAIM = Script(
    """
local value = redis.call('GET', KEYS[1])
if value then
  local held, claimant = string.match(value, '^(%S+) ?(.*)$')
  if claimant == ARGV[4] then return 1 end
  if tonumber(held) and tonumber(held) > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2] .. ' ' .. ARGV[4], 'PX', ARGV[3])
return 1
"""
)


class RedisStore(LeasedStore):
    """Sessions in Redis; ``url`` wins over ``host``/``port``/``password``/``db``.

    ``cluster=True`` (or ``startup_nodes``) talks to a Redis Cluster;
    ``sentinels`` + ``service_name`` to the master a set of sentinels watch.
    """

    driver = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        password: str | None = None,
        db: int = 0,
        cluster: bool = False,
        startup_nodes: Sequence[Sequence[Any]] | None = None,
        sentinels: Sequence[Sequence[Any]] | None = None,
        service_name: str | None = None,
        sentinel_password: str | None = None,
        replica_acks: int = 0,
        replica_ack_timeout: float = 1.0,
        prefix: str = "bottender:",
        expires_in: float | None = None,
        event_ttl: float = DEFAULT_EVENT_TTL_SECONDS,
        lock_lease: float = DEFAULT_LOCK_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(lock_lease=lock_lease, clock=clock)
        self._topology = Topology.of(
            url=url,
            host=host,
            port=port,
            password=password,
            db=db,
            cluster=cluster,
            startup_nodes=startup_nodes,
            sentinels=sentinels,
            service_name=service_name,
            sentinel_password=sentinel_password,
        )
        self.topology = self._topology.kind
        self.display_url = self._topology.display
        if self.topology == "cluster" and ("{" in prefix or "}" in prefix):
            raise ValueError(f"prefix {prefix!r}: no braces on a Redis Cluster (hash tags)")
        if not isinstance(replica_acks, int) or replica_acks < 0:
            raise ValueError(f"replica_acks must be a whole number >= 0, got {replica_acks!r}")
        if replica_ack_timeout <= 0:
            raise ValueError(f"replica_ack_timeout must be positive, got {replica_ack_timeout!r}")
        self._acks = {"replica_acks": replica_acks, "replica_ack_timeout": replica_ack_timeout}
        self._prefix = prefix
        self.expires_in = expires_in
        self._session_ttl_ms = None if expires_in is None else _millis(expires_in * 60)
        self._event_ttl = event_ttl
        self._lease_ms = _millis(lock_lease)
        self._redis: Redis | RedisCluster | None = None

    async def open(self) -> None:
        if self._redis is not None:
            return
        options = {
            "socket_connect_timeout": SOCKET_CONNECT_TIMEOUT,
            "socket_timeout": SOCKET_TIMEOUT,
            # One quick retry rides over a pooled connection the server dropped
            # (restart, idle timeout); more would only delay the 503.
            "retry": Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=1),
        }
        try:
            client = self._topology.connect(**options)
        except (RedisError, RedisClusterException, OSError) as error:
            raise StoreUnavailable(f"cannot reach Redis at {self.display_url}: {error}") from error
        try:
            if isinstance(client, RedisCluster):
                await client.initialize()
            await client.ping()
        except (RedisError, RedisClusterException, OSError) as error:
            await client.aclose()
            raise StoreUnavailable(f"cannot reach Redis at {self.display_url}: {error}") from error
        self._redis = client
        if isinstance(client, RedisCluster):
            self._pipeline: AutoPipeline = ClusterAutoPipeline(client, SOCKET_TIMEOUT, **self._acks)
        else:
            self._pipeline = AutoPipeline(client, SOCKET_TIMEOUT, **self._acks)

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await self._pipeline.close()
            await client.aclose()

    async def server_time(self) -> float | None:
        """Redis ``TIME``: the clock its lock leases expire by."""
        with self._errors("reading the server's time") as redis:
            answer = await redis.time()
        if isinstance(answer, dict):  # a cluster may answer per node: any one will do
            answer = next(iter(answer.values()))
        seconds, microseconds = answer
        return seconds + microseconds / 1e6

    def inbox(self) -> Inbox:
        """The durable inbox on this store's connection: sessions/redis_inbox.py."""
        from bottender.sessions.redis_inbox import RedisInbox

        if getattr(self, "_inbox", None) is None:
            self._inbox = RedisInbox(self)
        return self._inbox

    async def read(self, key: str) -> Session | None:
        with self._errors(f"reading session {key!r}") as redis:
            data = await redis.get(self._key("session", key))
        return self._load(key, data)

    async def write(self, session: Session) -> None:
        with self._errors(f"writing session {session.id!r}") as redis:
            await redis.set(
                self._key("session", session.id), _encode(session), px=self._session_ttl_ms
            )

    async def destroy(self, key: str) -> None:
        with self._errors(f"destroying session {key!r}") as redis:
            await redis.delete(self._key("session", key))

    async def all(self) -> AsyncIterator[Session]:
        with self._errors("listing sessions") as redis:
            batch: list[bytes] = []
            async for name in self._scan("session"):
                batch.append(name)
                if len(batch) >= SCAN_BATCH:
                    for session in self._decode_many(batch, await self._mget(redis, batch)):
                        yield session
                    batch = []
            if batch:
                for session in self._decode_many(batch, await self._mget(redis, batch)):
                    yield session

    async def _scan(self, kind: str) -> AsyncIterator[bytes]:
        """Every key of one namespace; on a Cluster, SCAN goes over every master."""
        assert self._redis is not None
        pattern = _glob_escape(f"{self._prefix}{kind}:") + "*"
        async for name in self._redis.scan_iter(match=pattern, count=SCAN_BATCH):
            yield name

    @staticmethod
    async def _mget(redis: Redis | RedisCluster, names: list[bytes]) -> list[bytes | None]:
        """MGET; on a Cluster split per slot (sessions live in different slots)."""
        if isinstance(redis, RedisCluster):
            return await redis.mget_nonatomic(names)
        return await redis.mget(names)

    async def claim_event(self, event_id: str) -> bool:
        now = self._clock()
        with self._errors(f"claiming event {event_id!r}"):
            claimed = await self._run(
                CLAIM,
                [self._key("event", event_id)],
                [repr(now), repr(now + self._event_ttl), _millis(self._event_ttl), new_token()],
            )
        return bool(claimed)

    async def release_event(self, event_id: str) -> None:
        with self._errors(f"releasing event {event_id!r}") as redis:
            await redis.delete(self._key("event", event_id))

    async def _try_acquire(self, key: str, token: str, *, read: bool) -> Acquired | None:
        with self._errors(f"locking session {key!r}"):
            reply = await self._run(
                ACQUIRE,
                [self._key("lock", key), self._key("session", key)],
                [token, self._lease_ms, "1" if read else "0"],
            )
        if reply is None:
            return None
        if len(reply) == 2:
            return Acquired(reply[1], existed=True)
        return Acquired(None, existed=False)

    def _load(self, key: str, data: bytes | None) -> Session | None:
        return None if data is None else self._decode(key, data)

    async def _renew(self, key: str, token: str) -> bool:
        with self._errors(f"renewing the lock on session {key!r}"):
            return bool(await self._run(RENEW, [self._key("lock", key)], [token, self._lease_ms]))

    async def _release(self, key: str, token: str, acquired: Acquired) -> None:
        with self._errors(f"unlocking session {key!r}"):
            await self._run(RELEASE, [self._key("lock", key)], [token])

    async def _write_release(self, key: str, token: str, session: Session) -> bool:
        ttl = "" if self._session_ttl_ms is None else self._session_ttl_ms
        with self._errors(f"writing session {key!r}"):
            return bool(
                await self._run(
                    WRITE_RELEASE,
                    [self._key("lock", key), self._key("session", key)],
                    [token, _encode(session), ttl],
                    durable=True,
                )
            )

    async def _run(
        self, script: Script, keys: list[str], args: list[Any], *, durable: bool = False
    ) -> Any:
        """Run one store step; on a Cluster or Sentinel, again if a failover failed it.

        Only the store step is repeated, never the bot: every script is safe
        to run twice (see the module docstring).
        """
        if self.topology == "single":
            return await self._pipeline.run(script, keys, args, durable=durable)
        started = time.monotonic()
        for attempt in range(1, STEP_ATTEMPTS + 1):
            try:
                return await self._pipeline.run(script, keys, args, durable=durable)
            except FAILOVER_ERRORS:
                if attempt == STEP_ATTEMPTS or time.monotonic() - started > STEP_RETRY_WINDOW:
                    raise
            await asyncio.sleep(0.05 * 4**attempt)  # 0.2 s, then 0.8 s: a failover's pace
        raise AssertionError("unreachable")  # pragma: no cover

    def _key(self, kind: str, name: str) -> str:
        """The key of ``kind`` for session (or event) ``name``.

        On a Cluster the name is a hash tag, so every key of one session lands
        in one slot and a script may touch them together.
        """
        if self.topology == "cluster":
            return f"{self._prefix}{kind}:{{{name}}}"
        return f"{self._prefix}{kind}:{name}"

    @contextmanager
    def _errors(self, doing: str) -> Iterator[Redis | RedisCluster]:
        """Every failure of the server becomes a StoreError that says what and where."""
        if self._redis is None:
            raise StoreError(f"Redis store at {self.display_url} is not open ({doing})")
        try:
            yield self._redis
        except (RedisError, RedisClusterException, OSError) as error:
            raise StoreError(f"Redis at {self.display_url}: {doing} failed: {error}") from error
        except StoreError:
            raise
        except Exception as error:
            # redis-py's cluster client can raise a bare exception while a failover
            # rebuilds its slot map (an AttributeError on a connection it closed under a
            # command, seen as a 500 mid-failover). The scripts' path sends such a command
            # again (redis_pipeline.client_failure); for a plain command, or anything not
            # seen yet, the step fails: a 503 the platform retries, the traceback kept here.
            logger.exception("Redis client error while %s", doing)
            raise StoreError(
                f"Redis at {self.display_url}: {doing} failed unexpectedly: {error!r}"
            ) from error

    def _decode(self, key: str, data: bytes) -> Session:
        try:
            return Session.from_dict(orjson.loads(data))
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise StoreError(f"Redis at {self.display_url}: session {key!r} is corrupt") from error

    def _decode_many(self, names: list[bytes], values: list[bytes | None]) -> Iterator[Session]:
        for name, data in zip(names, values, strict=True):
            if data is not None:  # destroyed between SCAN and MGET
                yield self._decode(name.decode(errors="replace"), data)


def _encode(session: Session) -> bytes:
    return orjson.dumps(session.to_dict())


def _millis(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _glob_escape(text: str) -> str:
    """SCAN MATCH treats these as wildcards; a prefix must match only itself."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
