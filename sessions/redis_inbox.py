"""The Redis driver's part of the durable inbox (the contract is in sessions/base.py).

Three keys per inbox shard, hash-tagged so that a Redis Cluster keeps them in
one slot (each script touches all three)::

    {prefix}inbox:{0}:entries   hash   entry id -> "<channel>\\n<webhook body>"
    {prefix}inbox:{0}:due       zset   entry id -> when it may be claimed (store clock, s)
    {prefix}inbox:{0}:owners    hash   entry id -> owner token

An owned entry is due when its lease runs out; a free one (put with no owner)
is due at once, scored by when it was put so it is claimed in arrival order.
So one script claims new and abandoned entries alike, and the leases work as
the session locks' do: renewed by their owner while it runs them, left to run
out when it dies. A sorted set rather than a stream with a consumer group:
an entry must be owned from the moment it is written (the writer is already
running its events), which XADD cannot do, and lease renewal by the owner is a
ZADD XX rather than an XCLAIM per entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from bottender.sessions.base import Inbox, InboxEntry
from bottender.sessions.redis_pipeline import Script

if TYPE_CHECKING:
    from bottender.sessions.redis import RedisStore

#: The inbox is one shard today; the number is part of the hash tag, so shards can be added.
SHARD = "0"

PUT = Script(
    """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[3], ARGV[1])
else
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
end
return 1
"""
)
CLAIM = Script(
    """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, id in ipairs(ids) do
  local value = redis.call('HGET', KEYS[1], id)
  if value then
    local previous = redis.call('HGET', KEYS[3], id) or ''
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    redis.call('HSET', KEYS[3], id, ARGV[3])
    table.insert(out, id)
    table.insert(out, value)
    table.insert(out, previous)
  else
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
  end
end
return out
"""
)
RENEW = Script(
    """
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[3], ARGV[i]) == ARGV[2] then
    redis.call('ZADD', KEYS[2], 'XX', ARGV[1], ARGV[i])
  end
end
return 1
"""
)
DROP = Script(
    """
if redis.call('HGET', KEYS[3], ARGV[1]) == ARGV[2] then
  redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[1])
end
return 1
"""
)
REMOVE = Script(
    """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""
)


class RedisInbox(Inbox):
    """Entries on the store's own connection and auto-pipeline."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self.lease = store._lock_lease
        prefix = store._prefix
        self._keys = [f"{prefix}inbox:{{{SHARD}}}:{part}" for part in ("entries", "due", "owners")]

    async def put(self, entry: InboxEntry, *, owner: str | None) -> None:
        now = self._store._clock()
        due = now if owner is None else now + self._store._lock_lease
        value = entry.channel.encode() + b"\n" + entry.body
        with self._store._errors(f"writing inbox entry {entry.id!r}"):
            await self._store._run(PUT, self._keys, [entry.id, value, repr(due), owner or ""])

    async def claim(self, owner: str, limit: int) -> list[InboxEntry]:
        now = self._store._clock()
        until = now + self._store._lock_lease
        with self._store._errors("claiming inbox entries"):
            reply = await self._store._run(
                CLAIM, self._keys, [repr(now), repr(until), owner, limit]
            )
        entries = []
        for index in range(0, len(reply), 3):
            entry_id, value, previous = reply[index : index + 3]
            channel, _, body = bytes(value).partition(b"\n")
            entries.append(
                InboxEntry(entry_id.decode(), channel.decode(), body, previous.decode() or None)
            )
        return entries

    async def renew(self, owner: str, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        until = self._store._clock() + self._store._lock_lease
        with self._store._errors("renewing inbox leases"):
            await self._store._run(RENEW, self._keys, [repr(until), owner, *ids])

    async def remove(self, entry_id: str) -> None:
        with self._store._errors(f"removing inbox entry {entry_id!r}"):
            await self._store._run(REMOVE, self._keys, [entry_id])

    async def drop(self, entry_id: str, owner: str) -> None:
        now = self._store._clock()
        with self._store._errors(f"giving back inbox entry {entry_id!r}"):
            await self._store._run(DROP, self._keys, [entry_id, owner, repr(now)])
