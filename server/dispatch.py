"""The seam between "accepted" and "run": when the platform gets its 200, and what
makes sure an event answered before it finished still runs if this process dies.

A channel's ``ack`` decides when a webhook is answered:

* ``"deadline"`` (default): when its events' sessions are written, or at the
  channel's ``deadline``, whichever comes first. Past the deadline the body is
  first written to the store's durable inbox, owned by this process, and only
  then answered; the events go on here.
* ``"immediate"``: as soon as the inbox holds the body. The events then run
  here, or, on a gateway started with ``--ingest-only``, in whichever process
  claims them first (``bottender worker``).

An inbox entry is removed once its events' sessions are written. Every process
on the store also claims entries whose owner died (their lease ran out) and
runs them; delivery ids recorded in the sessions make that replay run each
event once. The memory store has no inbox: events answered early run in this
process only, as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass

import orjson

from bottender.connectors.base import BadRequest, Connector, Event
from bottender.server.runtime import Runtime
from bottender.sessions.base import InboxEntry, SessionStore, StoreError

logger = logging.getLogger("bottender.dispatch")

ACK_DEADLINE = "deadline"
ACK_IMMEDIATE = "immediate"
ACKS = (ACK_DEADLINE, ACK_IMMEDIATE)
#: Inbox entries one process holds (written past their deadline, or claimed) at most;
#: past it the gateway answers 503 and the platform redelivers later.
DEFAULT_MAX_PENDING = 1000
#: How often an idle process looks for entries to claim.
POLL_INTERVAL = 0.1
#: Entries claimed in one call at most.
CLAIM_BATCH = 100
#: A handled delivery id is kept at least two leases plus this long, so that the
#: replay of an entry whose owner died just after writing its session is skipped.
HANDLED_KEEP_SLACK = 60.0


class Overloaded(Exception):
    """This process holds as many inbox entries as its bound allows: answer 503."""


@dataclass(slots=True)
class InboxStats:
    """Counters of this process's inbox, plain attributes for a metrics exporter to read.

    ``pending`` is a gauge (entries held right now); the others only grow.
    """

    pending: int = 0
    written: int = 0
    claimed: int = 0
    recovered: int = 0
    completed: int = 0
    refused: int = 0
    write_failures: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def finished_within(task: asyncio.Task[None], seconds: float) -> bool:
    """Wait for ``task`` at most ``seconds``, never cancelling it; ``True`` if it ended.

    The same as ``wait_for(shield(task), timeout)`` without its extra future,
    task hops and exception plumbing: one future and one timer per webhook.
    """
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def wake(_: object) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(seconds, wake, None)
    task.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
    return task.done()


def entry_id(channel: str, events: Iterable[Event]) -> str:
    """The same id for a platform's resend of the same body, so it lands on one entry."""
    ids = [event.delivery_id for event in events]
    if not ids or any(i is None for i in ids):
        return uuid.uuid4().hex
    text = "\n".join([channel, *ids])  # type: ignore[list-item]
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Dispatcher:
    """Runs accepted events, keeps the inbox, and claims what dead processes left.

    ``connectors`` maps an entry's channel name to its connector. ``run_entries``
    is false on a gateway that only ingests: it writes free entries and claims none.
    """

    def __init__(
        self,
        runtime: Runtime,
        store: SessionStore,
        connectors: Mapping[str, Connector],
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        run_entries: bool = True,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.runtime = runtime
        self.inbox = store.inbox()
        self.connectors = dict(connectors)
        self.max_pending = max_pending
        self.run_entries = run_entries
        self.poll_interval = poll_interval
        self.owner = uuid.uuid4().hex
        self.stats = InboxStats()
        if self.inbox is not None:
            runtime.handled_keep_for = 2 * (self.inbox.lease or 0.0) + HANDLED_KEEP_SLACK
        #: Event tasks still running; shutdown waits for them.
        self.background: set[asyncio.Task[None]] = set()
        #: Inbox entries this process holds, by id.
        self._held: set[str] = set()
        self._chores: set[asyncio.Task[None]] = set()
        self._pump_task: asyncio.Task[None] | None = None
        self._renew_task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._held)

    async def start(self, *, immediate_channels: Iterable[str] = ()) -> None:
        immediate = sorted(immediate_channels)
        if self.inbox is None:
            if immediate:
                logger.warning(
                    "channels %s acknowledge at once, but the memory store has no durable"
                    " inbox: an event answered before it finished is lost if this process"
                    " dies (use the file, redis or mongo driver)",
                    ", ".join(immediate),
                )
            return
        logger.info(
            "inbox owner %s (%s entries)", self.owner, "runs" if self.run_entries else "writes"
        )
        if not immediate:
            # Only abandoned entries to look for: no need to ask the store ten times a second.
            self.poll_interval = max(self.poll_interval, min(1.0, (self.inbox.lease or 2.0) / 4))
        if self.run_entries:
            self._pump_task = asyncio.create_task(self._pump())
        if self.inbox.lease is not None:
            self._renew_task = asyncio.create_task(self._renew(self.inbox.lease / 3))

    async def stop(self, grace: float) -> None:
        """Stop claiming, let running events finish (up to ``grace``), give back the rest."""
        if self._pump_task is not None:
            self._pump_task.cancel()
        if self.background:
            logger.info("waiting for %d event(s) still running", len(self.background))
            _, pending = await asyncio.wait(self.background, timeout=grace)
            for task in pending:
                logger.error("abandoning an event still running after %.0f s", grace)
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        if self._chores:
            await asyncio.wait(self._chores, timeout=5)
        loops = [task for task in (self._pump_task, self._renew_task) if task is not None]
        for loop_task in loops:
            loop_task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        if self.inbox is not None:
            for held in list(self._held):
                await self._give_back(held)
        self._held.clear()
        self.stats.pending = 0

    # --- accepting a webhook -------------------------------------------------------

    async def accept(
        self,
        channel: str,
        connector: Connector,
        events: list[Event],
        body: bytes,
        *,
        deadline: float,
        ack: str = ACK_DEADLINE,
        on_background: Callable[[asyncio.Task[None]], None] | None = None,
    ) -> str:
        """Run or enqueue a webhook's events; how it may be answered (``"done"``,
        ``"deadline"``, ``"immediate"``).

        Raises :class:`StoreError` (the inbox or the sessions could not be
        written) or :class:`Overloaded`: answer 503, the platform redelivers.
        ``on_background`` is handed each task that goes on after the answer.
        """
        keep = on_background or (lambda task: None)
        if ack == ACK_IMMEDIATE:
            return await self._accept_now(channel, connector, events, body, keep)
        task = self._run(connector, events)
        try:
            finished = await finished_within(task, deadline)
        except asyncio.CancelledError:
            # The platform hung up; it will redeliver. The events still finish here.
            keep(task)
            raise
        if finished:
            if task.cancelled():
                keep(task)
                raise asyncio.CancelledError
            error = task.exception()
            if error is not None:
                raise error
            return "done"
        logger.info("%s event past its %.1f s deadline: answering now", channel, deadline)
        keep(task)
        if self.inbox is not None:
            self._check_bound()
            entry = InboxEntry(entry_id(channel, events), channel, body)
            await self._put(entry, owner=self.owner)
            self._track(entry.id, task)
        return "deadline"

    async def _accept_now(
        self,
        channel: str,
        connector: Connector,
        events: list[Event],
        body: bytes,
        keep: Callable[[asyncio.Task[None]], None],
    ) -> str:
        if self.inbox is None:
            keep(self._run(connector, events))
            return "immediate"
        entry = InboxEntry(entry_id(channel, events), channel, body)
        if not self.run_entries:
            await self._put(entry, owner=None)
            return "immediate"
        self._check_bound()
        await self._put(entry, owner=self.owner)
        task = self._run(connector, events)
        keep(task)
        self._track(entry.id, task)
        return "immediate"

    def _check_bound(self) -> None:
        if len(self._held) >= self.max_pending:
            self.stats.refused += 1
            raise Overloaded(f"{len(self._held)} inbox entries pending (max {self.max_pending})")

    async def _put(self, entry: InboxEntry, *, owner: str | None) -> None:
        assert self.inbox is not None
        try:
            await self.inbox.put(entry, owner=owner)
        except StoreError:
            self.stats.write_failures += 1
            raise
        self.stats.written += 1

    # --- running events ------------------------------------------------------------

    def _run(self, connector: Connector, events: list[Event]) -> asyncio.Task[None]:
        task = asyncio.create_task(self.runtime.handle_events(connector, events))
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def _track(self, held: str, task: asyncio.Task[None]) -> None:
        """Hold the entry until ``task`` ends; then remove it, or leave it to be retried."""
        self._held.add(held)
        self.stats.pending = len(self._held)
        task.add_done_callback(lambda done: self._chore(self._settle(held, done)))

    def _chore(self, coro: object) -> None:
        chore = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._chores.add(chore)
        chore.add_done_callback(self._chores.discard)

    async def _settle(self, held: str, task: asyncio.Task[None]) -> None:
        assert self.inbox is not None
        error = None if task.cancelled() else task.exception()
        if task.cancelled() or isinstance(error, StoreError):
            # Not run to the end: its lease runs out and a process (maybe this one) retries it.
            if error is not None:
                logger.warning("inbox entry %s failed (%s); it will be retried", held, error)
            await self._let_go(held, later=not task.cancelled())
            return
        if error is not None:
            logger.error("inbox entry %s raised %r; removing it", held, error)
        await self._done_with(held)

    async def _done_with(self, held: str) -> None:
        """Remove an entry whose events are done (or can never run)."""
        assert self.inbox is not None
        try:
            await self.inbox.remove(held)
        except StoreError as failure:
            # Left in the inbox, it is run again later and skipped by its delivery ids.
            logger.warning("could not remove inbox entry %s: %s", held, failure)
        self._held.discard(held)
        self.stats.completed += 1
        self.stats.pending = len(self._held)

    async def _let_go(self, held: str, *, later: bool) -> None:
        """Stop holding an entry; ``later`` waits a lease first, so a failing entry is
        not retried in a tight loop."""
        assert self.inbox is not None
        if later:
            await asyncio.sleep(self.inbox.lease or 1.0)
        self._held.discard(held)
        self.stats.pending = len(self._held)
        await self._give_back(held)

    async def _give_back(self, held: str) -> None:
        assert self.inbox is not None
        try:
            await self.inbox.drop(held, self.owner)
        except StoreError as error:
            # Its lease runs out instead.
            logger.warning("could not give back inbox entry %s: %s", held, error)

    # --- claiming what is free or abandoned ---------------------------------------

    async def _pump(self) -> None:
        assert self.inbox is not None
        while True:
            room = min(self.max_pending - len(self._held), CLAIM_BATCH)
            claimed: list[InboxEntry] = []
            if room > 0:
                try:
                    claimed = await self.inbox.claim(self.owner, room)
                except StoreError as error:
                    logger.warning("could not claim inbox entries: %s", error)
            for entry in claimed:
                self._start_claimed(entry)
            if len(claimed) < CLAIM_BATCH:
                await asyncio.sleep(self.poll_interval)

    def _start_claimed(self, entry: InboxEntry) -> None:
        self.stats.claimed += 1
        if entry.id in self._held:
            logger.warning("inbox entry %s claimed again while held here (lease lapsed)", entry.id)
        if entry.previous_owner is not None and entry.previous_owner != self.owner:
            self.stats.recovered += 1
            logger.warning(
                "recovered inbox entry %s of channel %s, abandoned by process %s",
                entry.id,
                entry.channel,
                entry.previous_owner,
            )
        self._held.add(entry.id)
        self.stats.pending = len(self._held)
        connector = self.connectors.get(entry.channel)
        if connector is None:
            logger.error("inbox entry %s: no channel %r in this config", entry.id, entry.channel)
            self._chore(self._let_go(entry.id, later=True))
            return
        try:
            events = connector.parse(orjson.loads(entry.body))
        except (orjson.JSONDecodeError, BadRequest, TypeError) as error:
            logger.error(
                "inbox entry %s is not a %s body (%s); removing it", entry.id, entry.channel, error
            )
            self._chore(self._done_with(entry.id))
            return
        recovered = entry.previous_owner is not None
        task = asyncio.create_task(self._replay(connector, events, recovered=recovered))
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        self._track(entry.id, task)

    async def _replay(self, connector: Connector, events: list[Event], *, recovered: bool) -> None:
        """Run a claimed entry's events, leaving out those its dead owner finished.

        Checked before queueing for the sessions' locks: behind a busy
        conversation's queue, more newer events could run than its session
        remembers ids of. The check under the lock still stands behind this one.
        """
        if recovered:
            events = [
                event for event in events if not await self._already_handled(connector, event)
            ]
        if events:
            await self.runtime.handle_events(connector, events)

    async def _already_handled(self, connector: Connector, event: Event) -> bool:
        key = connector.session_key(event)
        if key is None or event.delivery_id is None:
            return False
        session = await self.runtime.store.read(key)
        return session is not None and session.has_handled(event.delivery_id)

    async def _renew(self, interval: float) -> None:
        assert self.inbox is not None
        while True:
            await asyncio.sleep(interval)
            if not self._held:
                continue
            try:
                await self.inbox.renew(self.owner, list(self._held))
            except StoreError as error:
                logger.warning("could not renew inbox leases: %s", error)
