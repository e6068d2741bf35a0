"""The Redis driver: sessions shared by every process that reaches one server.

Keys live under ``prefix`` in three namespaces, so sessions, locks and event
claims can never be mistaken for one another whatever a session id contains::

    {prefix}session:{id}   the session, compact JSON, PX ``expires_in`` refreshed on write
    {prefix}lock:{id}      the owner token of the session's lock, PX ``lock_lease``
    {prefix}event:{id}     a handled event's expiry time, PX ``event_ttl``

Every multi-step operation is a Lua script, so it is atomic on the server and
costs one round trip: an event normally takes two (lock+read, write+unlock).
The scripts touch two keys of one session, so a Redis Cluster would need the
keys hash-tagged; this driver targets a single server (or a replicated one).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from bottender.sessions.base import DEFAULT_EVENT_TTL_SECONDS, StoreError, StoreUnavailable
from bottender.sessions.leases import DEFAULT_LOCK_LEASE_SECONDS, Acquired, LeasedStore, redact_url
from bottender.sessions.redis_pipeline import AutoPipeline, Script
from bottender.sessions.session import Session

#: A dead server must fail the request quickly (503, the platform retries) rather than hang it.
SOCKET_CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 5.0
SCAN_BATCH = 500

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
CLAIM = Script(
    """
local held = tonumber(redis.call('GET', KEYS[1]))
if held and held > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
)


class RedisStore(LeasedStore):
    """Sessions in Redis; ``url`` wins over ``host``/``port``/``password``/``db``."""

    driver = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        password: str | None = None,
        db: int = 0,
        prefix: str = "bottender:",
        expires_in: float | None = None,
        event_ttl: float = DEFAULT_EVENT_TTL_SECONDS,
        lock_lease: float = DEFAULT_LOCK_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(lock_lease=lock_lease, clock=clock)
        self._url = url
        self._server = {"host": host, "port": port, "password": password, "db": db}
        self.display_url = redact_url(url) if url else f"redis://{host}:{port}/{db}"
        self._prefix = prefix
        self.expires_in = expires_in
        self._session_ttl_ms = None if expires_in is None else _millis(expires_in * 60)
        self._event_ttl = event_ttl
        self._lease_ms = _millis(lock_lease)
        self._redis: Redis | None = None

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
        if self._url:
            client = Redis.from_url(self._url, **options)
        else:
            client = Redis(**self._server, **options)
        try:
            await client.ping()
        except (RedisError, OSError) as error:
            await client.aclose()
            raise StoreUnavailable(f"cannot reach Redis at {self.display_url}: {error}") from error
        self._redis = client
        self._pipeline = AutoPipeline(client, SOCKET_TIMEOUT)

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await self._pipeline.close()
            await client.aclose()

    async def server_time(self) -> float | None:
        """Redis ``TIME``: the clock its lock leases expire by."""
        with self._errors("reading the server's time") as redis:
            seconds, microseconds = await redis.time()
        return seconds + microseconds / 1e6

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
        pattern = _glob_escape(self._prefix + "session:") + "*"
        with self._errors("listing sessions") as redis:
            batch: list[bytes] = []
            async for name in redis.scan_iter(match=pattern, count=SCAN_BATCH):
                batch.append(name)
                if len(batch) >= SCAN_BATCH:
                    for session in self._decode_many(batch, await redis.mget(batch)):
                        yield session
                    batch = []
            if batch:
                for session in self._decode_many(batch, await redis.mget(batch)):
                    yield session

    async def claim_event(self, event_id: str) -> bool:
        now = self._clock()
        with self._errors(f"claiming event {event_id!r}"):
            claimed = await self._pipeline.run(
                CLAIM,
                [self._key("event", event_id)],
                [repr(now), repr(now + self._event_ttl), _millis(self._event_ttl)],
            )
        return bool(claimed)

    async def release_event(self, event_id: str) -> None:
        with self._errors(f"releasing event {event_id!r}") as redis:
            await redis.delete(self._key("event", event_id))

    async def _try_acquire(self, key: str, token: str, *, read: bool) -> Acquired | None:
        with self._errors(f"locking session {key!r}"):
            reply = await self._pipeline.run(
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
            return bool(
                await self._pipeline.run(RENEW, [self._key("lock", key)], [token, self._lease_ms])
            )

    async def _release(self, key: str, token: str, acquired: Acquired) -> None:
        with self._errors(f"unlocking session {key!r}"):
            await self._pipeline.run(RELEASE, [self._key("lock", key)], [token])

    async def _write_release(self, key: str, token: str, session: Session) -> bool:
        ttl = "" if self._session_ttl_ms is None else self._session_ttl_ms
        with self._errors(f"writing session {key!r}"):
            return bool(
                await self._pipeline.run(
                    WRITE_RELEASE,
                    [self._key("lock", key), self._key("session", key)],
                    [token, _encode(session), ttl],
                )
            )

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    @contextmanager
    def _errors(self, doing: str) -> Iterator[Redis]:
        """Every failure of the server becomes a StoreError that says what and where."""
        if self._redis is None:
            raise StoreError(f"Redis store at {self.display_url} is not open ({doing})")
        try:
            yield self._redis
        except (RedisError, OSError) as error:
            raise StoreError(f"Redis at {self.display_url}: {doing} failed: {error}") from error

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
