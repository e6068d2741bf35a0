"""Long polling: updates fetched from the platform instead of posted to a webhook.

``bottender start --polling`` and ``bottender dev --polling`` run one
:class:`Poller` per channel whose connector can poll (Telegram's
``getUpdates``); no tunnel, no public URL. The updates take the webhook's path
through the runtime: the same session lock, the same redelivery ids.

What it guarantees, and how:

* **Nothing lost, nothing run twice.** Telegram forgets an update only once a
  later ``getUpdates`` names an ``offset`` past it. The poller asks for the next
  batch only after every update of the current one has its session written, and
  never past an update whose store write failed; so a crash (even SIGKILL)
  replays the unconfirmed batch, whose updates already run are skipped by their
  delivery ids. A batch holds at most :data:`HANDLED_LIMIT` updates, the number
  of delivery ids a session remembers, so a replay is always recognised.
* **One poller per bot.** Two ``getUpdates`` callers of one bot make Telegram
  answer 409 to both; with ``--workers N`` or several processes on a shared
  store, the poller holds a lock on ``poller:<bot>`` in the session store (a
  lease on redis/mongo, renewed while held, freed by a crash after
  ``lock_lease`` seconds): one process polls, the others stand by and take over.
  A poller whose lease was taken while it held it (it was stalled, or cut off
  from the store, past the lease) stops polling at once and stands by in turn.
  On the memory store each process has its own locks, hence a warning at start.
* **Failures back off**: 1 s doubling to 30 s, with jitter; a 409 or a refused
  token is explained in one line.
* **Stopping** (SIGTERM) cancels the long poll only: updates being run finish
  and their sessions are written before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from bottender.connectors.base import Connector, Event
from bottender.server.runtime import Runtime
from bottender.sessions.base import Lease, SessionStore, StoreError
from bottender.sessions.session import HANDLED_LIMIT

logger = logging.getLogger("bottender.polling")

#: Seconds a ``getUpdates`` call waits on the platform for an update (a channel may set its own).
DEFAULT_POLL_SECONDS = 30.0
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
#: The lock (a lease on shared stores) held by the one process polling a bot.
LEASE_PREFIX = "poller:"


def backoff_delays() -> Any:
    """1 s, 2 s, 4 s ... up to 30 s, each within +-20 %, so restarted pollers do not align."""
    delay = FIRST_BACKOFF_SECONDS
    while True:
        yield min(delay, MAX_BACKOFF_SECONDS) * random.uniform(0.8, 1.2)
        delay *= 2


class Poller:
    """Long-polls one channel and hands its updates to the runtime.

    ``prepare`` is called once the lease is held, before the first poll: it
    stops webhook delivery (Telegram refuses ``getUpdates`` while a webhook is
    set) and returns what it did, in words.
    """

    def __init__(
        self,
        connector: Any,
        runtime: Runtime,
        store: SessionStore,
        *,
        prepare: Callable[[], Awaitable[list[str]]] | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        self.connector = connector
        self.runtime = runtime
        self.store = store
        self.prepare = prepare
        self.poll_seconds = poll_seconds
        self.polling = False
        self._stop_requested = False
        #: Polling must end: stop() was called, or the lease was lost (then it is cleared
        #: once the poller stands by again).
        self._halt = asyncio.Event()
        self._fetch: asyncio.Task[Any] | None = None
        #: The lease of the polling round under way, if any.
        self._lease: Lease | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.connector.channel

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=f"poller-{self.name}")
        return self._task

    async def stop(self) -> None:
        """Stop polling; wait for the updates being run (their sessions get written)."""
        self._stop_requested = True
        self._halt_polling()
        if self._task is None:
            return
        if not self.polling:
            self._task.cancel()  # standing by for the lease: nothing in flight
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def run(self) -> None:
        """Stand by for the bot's lease, then poll until stopped; a store outage is waited out.

        A lease lost while polling (another process took it: this one was stalled, or
        cut off from the store, past ``lock_lease``) ends the polling at once, so two
        processes never long-poll one bot together; this one stands by to take it back.
        """
        lease_key = LEASE_PREFIX + self.connector.poll_identity
        delays = backoff_delays()
        while not self._stop_requested:
            self._halt.clear()
            logger.info("channel %s: waiting for the polling lease %s", self.name, lease_key)
            try:
                async with self.store.lease(lease_key) as lease:
                    if self._stop_requested:
                        return
                    await self._poll_while_held(lease)
            except StoreError as error:
                delay = next(delays)
                logger.error(
                    "channel %s: cannot take the polling lease (%s); retrying in %.0f s",
                    self.name,
                    error,
                    delay,
                )
                await self._pause(delay)
                continue
            if self._stop_requested:
                return
            logger.warning(
                "channel %s: another process took the polling lease %s; stopped polling,"
                " standing by to take it back",
                self.name,
                lease_key,
            )

    async def _poll_while_held(self, lease: Lease) -> None:
        """Poll until stopped or until ``lease`` is lost, whichever comes first."""
        watch = asyncio.create_task(lease.lost.wait())
        watch.add_done_callback(lambda task: self._lease_ended(lease))
        self._lease = lease
        self.polling = True
        try:
            await self._poll(lease)
        finally:
            self.polling = False
            self._lease = None
            watch.cancel()

    def _lease_ended(self, lease: Lease) -> None:
        """Halt the polling the lost ``lease`` was for, never a later round's.

        The watch's callback runs a loop turn after the lease was lost: by then
        this round may have ended and the next one begun, under a new lease.
        """
        if lease.lost.is_set() and self._lease is lease:
            self._halt_polling()

    def _halt_polling(self) -> None:
        """End the polling: the long poll is cut, updates being run finish."""
        self._halt.set()
        if self._fetch is not None:
            self._fetch.cancel()

    async def _poll(self, lease: Lease) -> None:
        delays = backoff_delays()
        if self.prepare is not None:
            while not await self._attempt(self._prepare, delays):
                if self._halt.is_set():
                    return
            delays = backoff_delays()
        logger.info("channel %s: polling for updates", self.name)
        offset: int | None = None
        confirmed: int | None = None
        while not self._halt.is_set():
            fetched = await self._attempt(functools.partial(self._fetch_updates, offset), delays)
            if fetched is None:
                continue
            delays = backoff_delays()
            confirmed = offset
            if not fetched:
                continue
            offset, failed = await self._run_batch(fetched, offset)
            if failed:
                await self._pause(next(delays))
        # Confirming is a getUpdates call: never once the lease belongs to another poller
        # (the updates it did not confirm are replayed there and skipped by their ids).
        if offset is not None and offset != confirmed and not lease.lost.is_set():
            await self._confirm(offset)

    async def _prepare(self) -> bool:
        assert self.prepare is not None
        for line in await self.prepare():
            logger.warning("%s", line)
        return True

    async def _attempt(self, call: Callable[[], Awaitable[Any]], delays: Any) -> Any:
        """``await call()``; on failure, explain, back off and return ``None``."""
        try:
            return await call()
        except asyncio.CancelledError:
            if self._halt.is_set():
                return None
            raise
        except Exception as error:
            delay = next(delays)
            explained = self.connector.explain_poll_error(error)
            if explained is not None:
                logger.error("%s; retrying in %.0f s", explained, delay)
            else:
                logger.warning(
                    "channel %s: polling failed (%s); retrying in %.1f s", self.name, error, delay
                )
            await self._pause(delay)
            return None

    async def _fetch_updates(self, offset: int | None) -> list[tuple[int, list[Event]]]:
        """One long poll, in a task of its own so that stopping cancels it and nothing else."""
        self._fetch = asyncio.ensure_future(
            self.connector.fetch_updates(offset, self.poll_seconds, HANDLED_LIMIT)
        )
        try:
            return await self._fetch
        finally:
            self._fetch = None

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._halt.wait(), seconds)

    async def _run_batch(
        self, fetched: list[tuple[int, list[Event]]], offset: int | None
    ) -> tuple[int | None, bool]:
        """Run one batch; the next offset: past the batch, or at its first failed update.

        Updates of one session run in order, different sessions concurrently;
        a session's updates after a failed one wait for the replay.
        """
        groups: dict[Any, list[tuple[int, Event]]] = {}
        for update_id, events in fetched:
            for event in events:
                key = self.connector.session_key(event)
                groups.setdefault(key if key is not None else ("single", update_id), []).append(
                    (update_id, event)
                )
        failed: list[int] = []
        # Shielded: stopping must not cut an update between its bot and its session write.
        await asyncio.shield(
            asyncio.gather(*(self._run_group(group, failed) for group in groups.values()))
        )
        if failed:
            return min(failed), True
        return max(update_id for update_id, _ in fetched) + 1, False

    async def _run_group(self, group: list[tuple[int, Event]], failed: list[int]) -> None:
        for update_id, event in group:
            try:
                await self.runtime.handle(self.connector, event)
            except StoreError as error:
                logger.error(
                    "channel %s: session store failed on update %s (%s); it will be fetched again",
                    self.name,
                    update_id,
                    error,
                )
                failed.append(update_id)
                return
            except Exception:
                logger.exception("channel %s: update %s failed", self.name, update_id)
                failed.append(update_id)
                return

    async def _confirm(self, offset: int) -> None:
        """Tell the platform the last batch is done, so a restart need not replay it."""
        try:
            await self.connector.fetch_updates(offset, 0, 1)
        except Exception as error:  # a replay is harmless: delivery ids skip it
            logger.info("channel %s: could not confirm the last updates: %s", self.name, error)


def pollers(
    connectors: list[Connector],
    runtime: Runtime,
    store: SessionStore,
    prepare: Callable[[Connector], Callable[[], Awaitable[list[str]]]],
) -> list[Poller]:
    """One poller per connector that can poll."""
    return [
        Poller(
            connector,
            runtime,
            store,
            prepare=prepare(connector),
            poll_seconds=getattr(connector, "poll_timeout", DEFAULT_POLL_SECONDS),
        )
        for connector in connectors
        if connector.can_poll
    ]
