"""Cross-process session locks built from an owner token and a lease.

A networked store cannot rely on the operating system to release a lock when
its holder dies, so a lock expires unless its holder keeps renewing it: a
crashed process frees its sessions after ``lock_lease`` seconds, while a live
but slow bot renews every ``lease / 3`` and never loses its lock mid-event.

:class:`LeasedStore` turns three backend primitives (try to take, renew, give
back) into ``lock()`` and ``checkout()`` for every such driver, so the waiting,
renewal and clean-up rules are written once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import re
import secrets
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bottender.sessions.base import Checkout, Lease, SessionStore, StoreError
from bottender.sessions.locks import KeyedLock
from bottender.sessions.session import Session

logger = logging.getLogger(__name__)

DEFAULT_LOCK_LEASE_SECONDS = 30.0
#: Waiting for a lock another process holds: first and longest pause between tries.
FIRST_RETRY_DELAY = 0.002
MAX_RETRY_DELAY = 0.05
#: Giving back a lock after a failed release: first and longest pause between tries.
FIRST_RELEASE_RETRY_DELAY = 0.05
MAX_RELEASE_RETRY_DELAY = 1.0


@dataclass(slots=True)
class Acquired:
    """What taking a lock found, so the release can be done in one round trip."""

    #: The stored session as the backend returned it (read-only acquisitions: ``None``).
    data: Any
    #: Whether the backend already held a session for the key when the lock was taken.
    existed: bool


def retry_delays() -> Iterator[float]:
    """Exponential backoff with jitter, so waiting processes do not retry in lockstep."""
    delay = FIRST_RETRY_DELAY
    while True:
        yield delay * random.uniform(0.5, 1.5)
        delay = min(delay * 2, MAX_RETRY_DELAY)


_token_counter = itertools.count()
_token_prefix: tuple[int, str] = (0, "")


def new_token() -> str:
    """An owner token unique across processes and hosts.

    A random prefix drawn once per process (again after a fork) and a counter:
    as unique as a random token per lock, without a system call per event.
    """
    global _token_prefix
    pid = os.getpid()
    if _token_prefix[0] != pid:
        _token_prefix = (pid, secrets.token_hex(12) + "-")
    return f"{_token_prefix[1]}{next(_token_counter):x}"


def redact_url(url: str) -> str:
    """The URL with its password masked, for error messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


class LeasedStore(SessionStore):
    """A store whose session locks are leases held in the backend itself.

    Tasks of one process first queue on an in-process :class:`KeyedLock`, in
    arrival order, so only one task per process and key ever polls the backend.
    """

    def __init__(self, *, lock_lease: float, clock: Callable[[], float]) -> None:
        if lock_lease <= 0:
            raise ValueError(f"lock_lease must be positive, got {lock_lease!r}")
        self._lock_lease = lock_lease
        self._clock = clock
        self._local = KeyedLock()
        self._renewals = _Renewals(self)
        #: Releases being retried after a store outage (kept so they are not collected).
        self._releasing: set[asyncio.Task[None]] = set()

    @abstractmethod
    async def _try_acquire(self, key: str, token: str, *, read: bool) -> Acquired | None:
        """Take the lock unless another owner holds an unexpired lease.

        ``None`` means held by someone else. With ``read`` the session is read
        in the same round trip and returned undecoded, so that a corrupt one is
        reported after the lock is safely given back.
        """

    @abstractmethod
    def _load(self, key: str, data: Any) -> Session | None:
        """Decode what :meth:`_try_acquire` read (``None``: no live session)."""

    @abstractmethod
    async def _renew(self, key: str, token: str) -> bool:
        """Extend the lease; ``False`` when the lock is no longer ours."""

    @abstractmethod
    async def _release(self, key: str, token: str, acquired: Acquired) -> None:
        """Give the lock back if it is still ours."""

    @abstractmethod
    async def _write_release(self, key: str, token: str, session: Session) -> bool:
        """Write and give the lock back at once; ``False`` when the lock was lost."""

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        return self._hold(key, None)

    def lease(self, key: str) -> AbstractAsyncContextManager[Lease]:
        """The lock, whose ``lost`` is set if a renewal finds another owner."""
        return self._hold(key, Lease())

    @asynccontextmanager
    async def _hold(self, key: str, lease: Lease | None) -> AsyncIterator[Any]:
        async with self._local(key):
            token, acquired = await self._acquire(key, read=False)
            self._renewals.hold(key, token, lease)
            try:
                yield lease
            finally:
                self._renewals.drop(token)
                await self._release_quietly(key, token, acquired)

    @asynccontextmanager
    async def checkout(self, key: str) -> AsyncIterator[Checkout]:
        """Lock+read in one round trip and write+unlock in another."""
        async with self._local(key):
            token, acquired = await self._acquire(key, read=True)
            try:
                checkout = Checkout(self._load(key, acquired.data))
            except BaseException:
                await self._release_quietly(key, token, acquired)
                raise
            self._renewals.hold(key, token)
            try:
                yield checkout
            except BaseException:
                await self._release_quietly(key, token, acquired)
                raise
            finally:
                self._renewals.drop(token)
            if checkout.to_save is None:
                await self._release_quietly(key, token, acquired)
                return
            try:
                saved = await self._write_release(key, token, checkout.to_save)
            except BaseException:
                # Whether the write landed is unknown; the token makes a second
                # release harmless, and the lease frees the lock if this fails too.
                await self._release_quietly(key, token, acquired)
                raise
            if not saved:
                raise StoreError(
                    f"lock on session {key!r} expired before it was written; "
                    "the update was not saved"
                )

    async def _acquire(self, key: str, *, read: bool) -> tuple[str, Acquired]:
        token = new_token()
        try:
            acquired = await self._try_acquire(key, token, read=read)
            if acquired is not None:
                return token, acquired
            for delay in retry_delays():
                await asyncio.sleep(delay)
                acquired = await self._try_acquire(key, token, read=read)
                if acquired is not None:
                    return token, acquired
        except asyncio.CancelledError:
            # The backend may have given us the lock just as we were cancelled; only
            # our token can give it back before its lease runs out.
            await self._release_quietly(key, token, Acquired(None, existed=False))
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _release_quietly(self, key: str, token: str, acquired: Acquired) -> None:
        """Release even when the holder is being cancelled; never mask the holder's outcome.

        A failed release is logged rather than raised, and retried in the
        background (:meth:`_retry_release`), so a store outage of a few seconds
        stalls the session for a few seconds rather than for the whole lease.
        """
        try:
            await asyncio.shield(self._release(key, token, acquired))
        except StoreError as error:
            logger.warning("could not release the lock on session %r (retrying): %s", key, error)
            task = asyncio.get_running_loop().create_task(self._retry_release(key, token, acquired))
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)

    async def _retry_release(self, key: str, token: str, acquired: Acquired) -> None:
        """Try the release again with backoff until it lands or the lease has run out.

        The release only deletes the lock if it still holds our token, so a
        retry never frees another owner's lock; once the lease is over there is
        nothing left to give back, which bounds the retries.
        """
        loop = asyncio.get_running_loop()
        expires = loop.time() + self._lock_lease
        delay = FIRST_RELEASE_RETRY_DELAY
        while loop.time() + delay < expires:
            await asyncio.sleep(delay)
            try:
                await self._release(key, token, acquired)
            except StoreError:
                delay = min(delay * 2, MAX_RELEASE_RETRY_DELAY)
                continue
            except Exception as error:  # the store was closed meanwhile: nothing to retry
                logger.debug("gave up releasing the lock on session %r: %s", key, error)
                return
            logger.info("released the lock on session %r after the store came back", key)
            return


class _Renewals:
    """The leases one store holds, renewed by one task while any is held.

    A lease is renewed once it has been held ``lock_lease / 3`` (checked every
    ``lock_lease / 6``), so a slow bot never loses its lock while most events,
    far shorter, cost only a dict entry: no timer or task per event.
    """

    def __init__(self, store: LeasedStore) -> None:
        self._store = store
        self._interval = store._lock_lease / 3
        #: token -> (key, when its lease was last taken or renewed, loop time)
        self._held: dict[str, tuple[str, float]] = {}
        #: token -> the Lease its holder watches, for the holders that watch one.
        self._watched: dict[str, Lease] = {}
        self._task: asyncio.Task[None] | None = None

    def hold(self, key: str, token: str, lease: Lease | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._held[token] = (key, loop.time())
        if lease is not None:
            self._watched[token] = lease
        if self._task is None:
            self._task = loop.create_task(self._renew_while_held())

    def drop(self, token: str) -> None:
        self._held.pop(token, None)
        self._watched.pop(token, None)
        if not self._held and self._task is not None:
            # Nothing left to renew: no task outlives the store's last lock.
            self._task.cancel()
            self._task = None

    async def _renew_while_held(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._held:
                await asyncio.sleep(self._interval / 2)
                now = loop.time()
                due = [
                    (token, key)
                    for token, (key, since) in self._held.items()
                    if now - since >= self._interval
                ]
                if due:
                    await asyncio.gather(*(self._renew(token, key, now) for token, key in due))
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _renew(self, token: str, key: str, now: float) -> None:
        try:
            renewed = await self._store._renew(key, token)
        except StoreError as error:
            # The lease still runs; the next round may get through.
            logger.warning("could not renew the lock on session %r: %s", key, error)
            return
        if token not in self._held:  # released meanwhile
            return
        if renewed:
            self._held[token] = (key, now)
            return
        self._held.pop(token, None)
        lease = self._watched.pop(token, None)
        if lease is not None:
            lease.lost.set()  # its holder stops, and says so in its own words
        else:
            logger.warning("lost the lock on session %r while holding it", key)
