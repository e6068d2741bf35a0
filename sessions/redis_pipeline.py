"""Automatic pipelining for the Redis driver: one pipeline per turn of the event loop.

Under load many events reach the store at the same moment, each with one
script to run. Sent one by one, redis-py spends about 50 µs of CPU on each
command (connection checkout, retry wrapper, per-read timeout, observability
hooks); written together on one of its pooled connections, packed by hiredis,
5 to 20 µs (measured on the bench machine, for batches of 32 down to 4). So every
command issued during one turn of the loop is sent in one batch at the start of
the next, the way ioredis's ``enableAutoPipelining`` does.

The semantics of each command are unchanged: it runs on the server in the
order it was issued, its reply or error is its own, and a lost connection
fails every command of its batch. Nothing waits for a batch to fill: a lone
command goes out on the very next turn.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from dataclasses import dataclass
from typing import Any

from hiredis import pack_command
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: A command waiting for its batch: the command, its caller's future, and whether it is durable.
Queued = tuple[tuple[Any, ...], "asyncio.Future[Any]", bool]


class Script:
    """A Lua script, sent by its SHA1; :meth:`AutoPipeline.run` loads it when the server asks."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class AutoPipeline:
    """Runs scripts for one Redis client, batching those issued in the same loop turn."""

    def __init__(
        self,
        redis: Redis | RedisCluster,
        timeout: float,
        *,
        replica_acks: int = 0,
        replica_ack_timeout: float = 1.0,
    ) -> None:
        self._redis = redis
        self._timeout = timeout
        self._acks = Acks(replica_acks, max(1, round(replica_ack_timeout * 1000)))
        self._queue: list[Queued] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def run(
        self, script: Script, keys: list[str], args: list[Any], *, durable: bool = False
    ) -> Any:
        """Run ``script``; ``durable``: fail unless ``replica_acks`` replicas confirm its writes."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self._execute(command, durable)
        except NoScriptError:
            # A restarted or flushed server has an empty script cache.
            try:
                await self._redis.script_load(script.source)
            except (RedisError, RedisClusterException, OSError):
                raise
            except Exception as error:  # see client_failure: a failover the caller may retry
                raise client_failure(error) from error
            return await self._execute(command, durable)

    def _execute(self, command: tuple[Any, ...], durable: bool) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((command, future, durable))
        if len(self._queue) == 1:
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[Queued]) -> None:
        try:
            async with asyncio.timeout(self._timeout + self._acks.timeout_ms / 1000):
                replies = await self._exchange(
                    [command for command, _, _ in batch], [durable for _, _, durable in batch]
                )
        except asyncio.CancelledError:
            for _, future, _ in batch:
                future.cancel()
            raise
        except TimeoutError:  # before OSError, of which it is a subclass
            self._fail(batch, RedisTimeoutError(f"no answer from Redis within {self._timeout:g} s"))
            return
        except (RedisError, RedisClusterException, OSError) as error:
            self._fail(batch, error)
            return
        except Exception as error:
            # Anything else from inside the client (see client_failure) must still answer
            # every caller: a batch whose futures stayed pending would hang its events.
            self._fail(batch, client_failure(error))
            return
        for (_, future, _), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled meanwhile
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    @staticmethod
    def _fail(batch: list[Queued], error: Exception) -> None:
        for _, future, _ in batch:
            if not future.done():
                future.set_exception(error)

    async def _exchange(self, commands: list[tuple[Any, ...]], durable: list[bool]) -> list[Any]:
        """Write every command at once on one pooled connection, then read each reply.

        The commands are packed by hiredis, and the batch has one timeout rather
        than one per reply; both are most of what this saves. A timeout or any
        other interruption mid-read makes redis-py drop the connection, so a
        half-read batch never leaves replies behind for the next user.
        """
        pool = self._redis.connection_pool
        connection = await pool.get_connection()
        try:
            return await exchange_on(connection, commands, durable, self._acks)
        finally:
            await pool.release(connection)

    async def close(self) -> None:
        """Let the batches already sent finish, so no reply is lost at shutdown."""
        if self._queue:
            self._flush()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)


class ClusterAutoPipeline(AutoPipeline):
    """Auto-pipelining on a Redis Cluster: each loop turn's batch is split per master.

    Every master gets its share of the batch on one of its pooled connections,
    all masters at once, packed by hiredis as on one server. A node that fails
    only fails its own share. What the fast path cannot finish — a reply MOVED
    or ASK (a slot that moved, a failover), TRYAGAIN, or a node whose
    connection broke — is sent again one command at a time through redis-py's
    own cluster client, which follows redirections and re-reads the slot map
    after a failover. Every script here is safe to run twice (the lock scripts
    check their owner token, a claim its claimant), so a resend never doubles
    an update.
    """

    async def _exchange(self, commands: list[tuple[Any, ...]], durable: list[bool]) -> list[Any]:
        cluster: RedisCluster = self._redis  # type: ignore[assignment]
        await cluster.initialize()  # a no-op unless a failure asked for a fresh slot map
        shares: dict[str, tuple[ClusterNode, list[int]]] = {}
        for index, command in enumerate(commands):
            # Our commands are EVALSHA sha numkeys key...: the first key names the slot.
            node = cluster.nodes_manager.get_node_from_slot(cluster.keyslot(command[3]))
            shares.setdefault(node.name, (node, []))[1].append(index)
        outcomes = await asyncio.gather(
            *(
                self._node_exchange(node, [commands[i] for i in share], [durable[i] for i in share])
                for node, share in shares.values()
            ),
            return_exceptions=True,
        )
        replies: list[Any] = [None] * len(commands)
        for (_, share), outcome in zip(shares.values(), outcomes, strict=True):
            failed = isinstance(outcome, BaseException)
            for position, index in enumerate(share):
                replies[index] = outcome if failed else outcome[position]
        for index, reply in enumerate(replies):
            if isinstance(reply, BaseException) and not isinstance(reply, Exception):
                raise reply
            if _needs_resend(reply):
                replies[index] = await self._resend(cluster, commands[index])
                if durable[index] and self._acks.wanted:
                    # Sent on a connection of redis-py's choosing: no WAIT can vouch for it.
                    replies[index] = self._acks.shortfall(replies[index], None)
        return replies

    async def _node_exchange(
        self, node: ClusterNode, commands: list[tuple[Any, ...]], durable: list[bool]
    ) -> list[Any]:
        """One master's share, written at once on one of its connections.

        A connection the client closed under the share fails it as a lost
        connection (see client_failure), so its commands are sent again.
        """
        connection = node.acquire_connection()
        try:
            return await exchange_on(connection, commands, durable, self._acks)
        except BaseException as error:
            await connection.disconnect()  # half-read: never hand it to the next user
            if isinstance(error, Exception) and not _redis_failure(error):
                raise client_failure(error) from error
            raise
        finally:
            node.release(connection)

    @staticmethod
    async def _resend(cluster: RedisCluster, command: tuple[Any, ...]) -> Any:
        try:
            return await cluster.execute_command(*command)
        except (RedisError, RedisClusterException, OSError) as error:
            return error


def client_failure(error: Exception) -> RedisConnectionError:
    """What a non-Redis exception from inside redis-py means here: a lost connection.

    While a failover rebuilds the slot map, redis-py's cluster client closes
    every connection of every node (``RedisCluster.aclose`` on CLUSTERDOWN),
    including ones in use elsewhere; a connection closed between two of its
    own steps fails with a bare ``AttributeError: 'NoneType' object has no
    attribute 'writelines'`` (seen mid-handshake in the crash failover test).
    Called a lost connection, the command is sent again (cluster) or the step
    retried (``RedisStore._run``), as for any failover; never a 500.
    """
    lost = RedisConnectionError(f"the Redis client lost its connection: {error!r}")
    lost.__cause__ = error
    return lost


def _redis_failure(error: BaseException) -> bool:
    return isinstance(error, RedisError | RedisClusterException | OSError)


def _needs_resend(reply: Any) -> bool:
    """A redirection, a cluster in transition, or a node that failed (not a script's error)."""
    if isinstance(reply, AskError | TryAgainError | ClusterDownError):  # AskError: MOVED too
        return True
    return isinstance(reply, RedisError | OSError) and not isinstance(reply, ResponseError)


class NotReplicatedError(RedisError):
    """A write the master applied but too few replicas confirmed: it may not survive a failover."""


@dataclass(frozen=True, slots=True)
class Acks:
    """How many replicas must confirm a durable write (``WAIT``), and for how long to wait."""

    wanted: int
    timeout_ms: int

    def shortfall(self, reply: Any, acked: int | None) -> Any:
        """``reply``, or the error that replaces it when fewer replicas confirmed it."""
        if isinstance(reply, Exception) or (acked is not None and acked >= self.wanted):
            return reply
        got = "an unconfirmed number of" if acked is None else str(acked)
        return NotReplicatedError(
            f"the write reached {got} of the {self.wanted} replica(s) required within "
            f"{self.timeout_ms} ms, so it may not survive a failover"
        )


async def exchange_on(
    connection: Any, commands: list[tuple[Any, ...]], durable: list[bool], acks: Acks
) -> list[Any]:
    """Send ``commands`` at once on ``connection`` and read each reply.

    With durable commands among them and ``acks.wanted``, a ``WAIT`` follows on
    the same connection (it counts the replicas that have every write this
    connection made); durable replies it cannot vouch for become errors.
    """
    wait = acks.wanted if acks.wanted and any(durable) else 0
    packed = [pack_command(command) for command in commands]
    if wait:
        packed.append(pack_command(("WAIT", wait, acks.timeout_ms)))
    await connection.send_packed_command(b"".join(packed))
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(await connection.read_response(timeout=math.inf))
        except ResponseError as error:  # this command's own answer; the stream is intact
            replies.append(error)
    if not wait:
        return replies
    try:
        acked = int(await connection.read_response(timeout=math.inf))
    except ResponseError:
        acked = 0
    return [
        acks.shortfall(reply, acked) if is_durable else reply
        for reply, is_durable in zip(replies, durable, strict=True)
    ]
