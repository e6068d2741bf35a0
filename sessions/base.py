"""The contract every session driver fulfils.

The runtime only ever talks to this interface, so a bot moves from the memory
store to Redis or MongoDB by changing one config key. A driver owns how a
session is encoded; nothing outside its module knows the format.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from dataclasses import dataclass

from bottender.sessions.session import Session

#: How long a handled event id is remembered, so a platform redelivery runs once.
DEFAULT_EVENT_TTL_SECONDS = 24 * 60 * 60


class StoreError(Exception):
    """The store could not be read or written.

    The server answers 503 so the platform redelivers; a read failure is never
    taken to mean "no session", which would silently reset the conversation.
    """


class StoreUnavailable(StoreError):
    """The store cannot be reached at start-up; the message names where it was looked for."""


@dataclass(slots=True)
class Checkout:
    """A session taken out of the store under its lock.

    ``session`` is what the store held (``None`` for a new conversation). Calling
    :meth:`save` asks the store to write the given session when the checkout
    closes, before the lock is released; not calling it leaves the store as it was.
    """

    session: Session | None
    to_save: Session | None = None

    def save(self, session: Session) -> None:
        self.to_save = session


class Lease:
    """A lock held for as long as its holder runs (a poller's), told when it is taken away.

    ``lost`` is set when renewing the lease found another owner on the key: the
    holder was stalled, or cut off from the store, for longer than ``lock_lease``,
    and another process took over. A transient store error does not set it (the
    lease still runs). Locks the OS or this process keep (memory, file) are never lost.
    """

    __slots__ = ("lost",)

    def __init__(self) -> None:
        self.lost = asyncio.Event()


@dataclass(slots=True)
class InboxEntry:
    """One webhook body acknowledged before its events finished.

    ``id`` is derived from the events' delivery ids when they all have one, so a
    platform's resend of the same body lands on the same entry instead of a twin.
    ``previous_owner`` is filled in by :meth:`Inbox.claim`: the process that held
    the entry before (``None`` when nobody had run it yet).
    """

    id: str
    channel: str
    body: bytes
    previous_owner: str | None = None


class Inbox(ABC):
    """The durable inbox of a shared store: events answered before they finished.

    An entry is *owned* by the process running it, under a lease of
    ``lock_lease`` seconds that its owner renews (the file driver uses an OS
    lock the kernel drops when the owner dies, so it needs no lease). An entry
    whose lease ran out, or that was put with no owner (``ack: "immediate"`` on
    a gateway that leaves the running to workers), can be claimed by any
    process; no entry can be claimed while its owner still holds it. Running an
    entry twice is safe: the sessions' delivery ids skip what already ran.
    """

    #: Seconds an owner's hold lasts unless renewed; ``None`` when the backend
    #: needs no renewal (the file driver's OS locks).
    lease: float | None = None

    @abstractmethod
    async def put(self, entry: InboxEntry, *, owner: str | None) -> None:
        """Write ``entry`` durably, owned by ``owner`` (``None``: free to claim at once).

        Putting an id that exists replaces it and takes it over: the caller is
        running the same events.
        """

    @abstractmethod
    async def claim(self, owner: str, limit: int) -> list[InboxEntry]:
        """Take up to ``limit`` free or abandoned entries for ``owner``, oldest first."""

    @abstractmethod
    async def renew(self, owner: str, ids: Iterable[str]) -> None:
        """Extend the leases of the entries ``owner`` still holds among ``ids``."""

    @abstractmethod
    async def remove(self, entry_id: str) -> None:
        """Forget an entry whose events are done; a missing entry is not an error."""

    async def drop(self, entry_id: str, owner: str) -> None:
        """Give back an entry ``owner`` holds without finishing it: claimable at once."""


class SessionStore(ABC):
    """Where sessions live between events.

    Drivers raise :class:`StoreError` for any failure of the backing store and
    :class:`StoreUnavailable` from :meth:`open` when it cannot be reached.
    """

    #: Name of the driver as written in ``session.driver``.
    driver: str = ""

    async def open(self) -> None:
        """Connect and check the store is reachable; called once at start-up."""

    async def close(self) -> None:
        """Release connections; called once at shutdown."""

    async def server_time(self) -> float | None:
        """The store server's clock (epoch seconds), for ``bottender doctor``'s skew check.

        ``None`` for a store in this process or on this disk: it shares the clock.
        """
        return None

    @abstractmethod
    async def read(self, key: str) -> Session | None:
        """The stored session, or ``None`` when there is none."""

    @abstractmethod
    async def write(self, session: Session) -> None:
        """Store ``session`` under ``session.id``, replacing what was there."""

    @abstractmethod
    async def destroy(self, key: str) -> None:
        """Forget the session; destroying a missing session is not an error."""

    @abstractmethod
    def all(self) -> AsyncIterator[Session]:
        """Every stored session, in no particular order."""

    @abstractmethod
    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """Exclusive access to one session key.

        Holders of the same key run one at a time, in arrival order where the
        backend allows it; different keys never wait for each other. Drivers
        shared by several processes make the lock hold across processes too.
        """

    @asynccontextmanager
    async def lease(self, key: str) -> AsyncIterator[Lease]:
        """:meth:`lock` for a holder that keeps it indefinitely and must stop once it is lost.

        The holder watches :attr:`Lease.lost`; a driver whose locks are leases
        (redis, mongo) sets it. Here the lock cannot be taken away.
        """
        async with self.lock(key):
            yield Lease()

    @abstractmethod
    async def claim_event(self, event_id: str) -> bool:
        """Record that a platform event is being handled.

        Returns ``False`` when the id was already claimed (a redelivery), so the
        event is acknowledged without running again. Claims are kept for a
        bounded time.
        """

    @abstractmethod
    async def release_event(self, event_id: str) -> None:
        """Forget a claim, so a redelivery of a failed event runs again."""

    def inbox(self) -> Inbox | None:
        """This store's durable inbox, or ``None`` when it has none (the memory store).

        Shared drivers return one object per store, living on the store's connection.
        """
        return None

    @asynccontextmanager
    async def checkout(self, key: str) -> AsyncIterator[Checkout]:
        """Lock and read one session; write it (if saved) and unlock on exit.

        This is the runtime's single entry point. The default composes
        :meth:`lock`, :meth:`read` and :meth:`write`; a networked driver may
        override it to fuse lock+read and write+unlock into one round trip each.
        """
        async with self.lock(key):
            checkout = Checkout(await self.read(key))
            yield checkout
            if checkout.to_save is not None:
                await self.write(checkout.to_save)

    # --- operators' primitives (``bottender sessions list|show|delete``) ---------------

    async def list_sessions(self, limit: int | None = None) -> AsyncIterator[Session]:
        """Stored sessions, at most ``limit``, streamed: never all of them in memory at once.

        The default reads :meth:`all`, which every driver streams in batches
        (Redis ``SCAN``, a MongoDB cursor, ``os.scandir``).
        """
        if limit is not None and limit <= 0:
            return
        count = 0
        async with aclosing(self.all()) as sessions:
            async for session in sessions:
                yield session
                count += 1
                if limit is not None and count >= limit:
                    return

    async def delete(self, key: str) -> bool:
        """Forget one session under its lock, as an operator erasing it does.

        An event of the session in progress (on any process sharing the store)
        finishes and writes first; none can write it back half-way through.
        Returns whether there was a session to delete.
        """
        async with self.lock(key):
            existed = await self.read(key) is not None
            await self.destroy(key)
        return existed
