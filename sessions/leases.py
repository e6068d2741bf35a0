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
import logging
import random
import re
import secrets
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from sessions.base import Checkout, SessionStore, StoreError
from sessions.locks import KeyedLock
from sessions.session import Session

logger = logging.getLogger(__name__)

DEFAULT_LOCK_LEASE_SECONDS = 30.0
#: Waiting for a lock another process holds: first and longest pause between tries.
FIRST_RETRY_DELAY = 0.002
MAX_RETRY_DELAY = 0.05


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


def new_token() -> str:
    """An owner token unique across processes and hosts."""
    return secrets.token_hex(16)


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
        return self._hold(key)

    @asynccontextmanager
    async def _hold(self, key: str) -> AsyncIterator[None]:
        async with self._local(key):
            token, acquired = await self._acquire(key, read=False)
            try:
                async with self._keep_alive(key, token):
                    yield
            finally:
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
            try:
                async with self._keep_alive(key, token):
                    yield checkout
            except BaseException:
                await self._release_quietly(key, token, acquired)
                raise
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

    @asynccontextmanager
    async def _keep_alive(self, key: str, token: str) -> AsyncIterator[None]:
        renewal = _Renewal(self, key, token)
        try:
            yield
        finally:
            await renewal.stop()

    async def _release_quietly(self, key: str, token: str, acquired: Acquired) -> None:
        """Release even when the holder is being cancelled; never mask the holder's outcome.

        A failed release only delays the next holder until the lease runs out,
        so it is logged rather than raised.
        """
        try:
            await asyncio.shield(self._release(key, token, acquired))
        except StoreError as error:
            logger.warning("could not release the lock on session %r: %s", key, error)


class _Renewal:
    """Renews one lease every ``lock_lease / 3`` while its holder runs.

    Most events end long before the first renewal is due, so this is a timer
    that becomes a task only when it fires: no task is made, cancelled and
    awaited per event on the hot path.
    """

    def __init__(self, store: LeasedStore, key: str, token: str) -> None:
        self._store, self._key, self._token = store, key, token
        self._interval = store._lock_lease / 3
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(self._interval, self._due)
        self._task: asyncio.Task[None] | None = None

    def _due(self) -> None:
        self._timer = None
        self._task = self._loop.create_task(self._renew())

    async def _renew(self) -> None:
        try:
            if not await self._store._renew(self._key, self._token):
                logger.warning("lost the lock on session %r while holding it", self._key)
                return
        except StoreError as error:
            # The lease still runs; the next renewal may get through.
            logger.warning("could not renew the lock on session %r: %s", self._key, error)
        self._timer = self._loop.call_later(self._interval, self._due)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        if self._timer is not None:  # set by a renewal that finished as it was stopped
            self._timer.cancel()
