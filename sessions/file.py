"""The file driver: one JSON file per session, shared by the processes of one host.

Layout under ``dirname``::

    <safe prefix>-<sha256 of id>.json    a session (its content holds the real id)
    locks/<same name>.lock               flock()ed while the session is locked
    events/<same name>                   a handled event's expiry time

File names are derived, never taken from the id: the readable prefix keeps only
``[A-Za-z0-9_-]`` and the hash makes names unique, so no id (``../``, ``/``,
NUL, thousands of characters) can leave the directory or meet another's file.

Writes are atomic (temporary file in the same directory, fsync, rename, fsync
of the directory), so a reader or a crash sees the old session or the new one,
never a mix. Cross-process locks are ``flock(2)`` locks: the kernel drops them
when their holder dies, so no lease is needed. ``flock`` is only reliable on a
local file system; several hosts need the Redis or MongoDB driver.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from pathlib import Path

import orjson

from bottender.sessions.base import (
    DEFAULT_EVENT_TTL_SECONDS,
    Inbox,
    SessionStore,
    StoreError,
    StoreUnavailable,
)
from bottender.sessions.leases import DEFAULT_LOCK_LEASE_SECONDS, retry_delays
from bottender.sessions.locks import KeyedLock
from bottender.sessions.session import Session

SUFFIX = ".json"
TEMP_SUFFIX = ".tmp"
PREFIX_CHARS = 40
#: Temporary files a killed writer left behind are removed at start-up once this old.
STALE_TEMP_SECONDS = 3600
#: Expired event claims are swept at most this often (seconds of the store's clock).
MAX_SWEEP_INTERVAL = 3600


def file_name(key: str) -> str:
    """A file name for ``key`` that is safe, unique, and still readable by a human."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", key)[:PREFIX_CHARS]
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{readable}-{digest}"


class FileStore(SessionStore):
    """Sessions as files in ``dirname``.

    ``lock_lease`` is accepted so every driver takes the same settings; flock
    needs none, since a crashed holder's lock is released by the kernel.
    """

    driver = "file"

    def __init__(
        self,
        dirname: str = ".session",
        *,
        event_ttl: float = DEFAULT_EVENT_TTL_SECONDS,
        lock_lease: float = DEFAULT_LOCK_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dirname = Path(dirname).absolute()
        self._locks_dir = self.dirname / "locks"
        self._events_dir = self.dirname / "events"
        self._event_ttl = event_ttl
        self._clock = clock
        self._local = KeyedLock()
        self._next_sweep = 0.0
        self._sweep: asyncio.Task[None] | None = None

    async def open(self) -> None:
        try:
            await asyncio.to_thread(self._prepare)
        except OSError as error:
            raise StoreUnavailable(
                f"cannot use {self.dirname} as the session directory: {error}"
            ) from error
        self._start_sweep()

    def inbox(self) -> Inbox:
        """The durable inbox in ``<dirname>/inbox``: sessions/file_inbox.py."""
        from bottender.sessions.file_inbox import FileInbox

        if getattr(self, "_inbox", None) is None:
            self._inbox = FileInbox(self)
        return self._inbox

    async def close(self) -> None:
        inbox = getattr(self, "_inbox", None)
        if inbox is not None:
            inbox.close()
        sweep, self._sweep = self._sweep, None
        if sweep is not None:
            await sweep

    async def read(self, key: str) -> Session | None:
        return await asyncio.to_thread(self._read, self._session_path(key), key)

    async def write(self, session: Session) -> None:
        data = orjson.dumps(session.to_dict())
        # A thread cannot be cancelled: a cancelled caller must still wait for the
        # rename, or it would release the session's lock while the file is being
        # replaced, and a newer write by the next holder could be overwritten.
        write = asyncio.ensure_future(
            asyncio.to_thread(self._write, self._session_path(session.id), data)
        )
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            with suppress(Exception):
                await write
            raise

    async def destroy(self, key: str) -> None:
        path = self._session_path(key)
        with self._errors(f"destroying session {key!r}"), suppress(FileNotFoundError):
            os.unlink(path)

    async def all(self) -> AsyncIterator[Session]:
        with self._errors("listing sessions"):
            names = await asyncio.to_thread(os.listdir, self.dirname)
        for name in names:
            if name.endswith(SUFFIX) and not name.startswith("."):
                session = await asyncio.to_thread(self._read, self.dirname / name, None)
                if session is not None:  # destroyed since the listing
                    yield session

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        return self._hold(key)

    @asynccontextmanager
    async def _hold(self, key: str) -> AsyncIterator[None]:
        path = self._locks_dir / (file_name(key) + ".lock")
        async with self._local(key):
            fd = await self._flock(path, key)
            try:
                yield
            finally:
                _unlock(fd, path)

    async def claim_event(self, event_id: str) -> bool:
        now = self._clock()
        if now >= self._next_sweep:
            self._start_sweep()
        path = self._events_dir / file_name(event_id)
        with self._errors(f"claiming event {event_id!r}"):
            return await asyncio.to_thread(_claim, path, now, now + self._event_ttl)

    async def release_event(self, event_id: str) -> None:
        path = self._events_dir / file_name(event_id)
        with self._errors(f"releasing event {event_id!r}"):
            await asyncio.to_thread(_remove_claim, path)

    def _session_path(self, key: str) -> Path:
        return self.dirname / (file_name(key) + SUFFIX)

    def _prepare(self) -> None:
        for directory in (self.dirname, self._locks_dir, self._events_dir):
            directory.mkdir(parents=True, exist_ok=True)
        if not os.access(self.dirname, os.W_OK | os.X_OK):
            raise PermissionError(f"no write permission on {self.dirname}")
        stale = time.time() - STALE_TEMP_SECONDS
        for entry in os.scandir(self.dirname):
            if entry.name.endswith(TEMP_SUFFIX) and entry.stat().st_mtime < stale:
                with suppress(FileNotFoundError):
                    os.unlink(entry.path)

    def _read(self, path: Path, key: str | None) -> Session | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if not self.dirname.is_dir():
                # A vanished directory is a broken store, not a new conversation.
                raise StoreError(f"session directory {self.dirname} is missing") from None
            return None
        except OSError as error:
            raise StoreError(f"cannot read session file {path}: {error}") from error
        try:
            session = Session.from_dict(orjson.loads(data))
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise StoreError(f"session file {path} is corrupt") from error
        if key is not None and session.id != key:
            raise StoreError(f"session file {path} holds {session.id!r}, not {key!r}")
        return session

    def _write(self, path: Path, data: bytes) -> None:
        with self._errors(f"writing session file {path}"):
            fd, temp = _temp_file(self.dirname)
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temp, path)
            except BaseException:
                with suppress(OSError):
                    os.unlink(temp)
                raise
            _fsync_dir(self.dirname)

    async def _flock(self, path: Path, key: str) -> int:
        """Poll a non-blocking flock, so waiting never ties up the event loop or a thread."""
        with self._errors(f"locking session {key!r}"):
            for delay in retry_delays():
                fd = _try_flock(path)
                if fd is not None:
                    return fd
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_sweep(self) -> None:
        if self._sweep is not None and not self._sweep.done():
            return
        now = self._clock()
        self._next_sweep = now + min(self._event_ttl, MAX_SWEEP_INTERVAL)
        self._sweep = asyncio.create_task(asyncio.to_thread(_sweep_claims, self._events_dir, now))

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except OSError as error:
            raise StoreError(f"file store {self.dirname}: {doing} failed: {error}") from error


def _temp_file(directory: Path) -> tuple[int, str]:
    """A new file in the session directory itself, so the rename cannot cross file systems."""
    name = str(directory / f".{os.urandom(8).hex()}{TEMP_SUFFIX}")
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), name


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable, not only the new file's bytes."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _try_flock(path: Path, *, block: bool = False) -> int | None:
    """An fd holding an exclusive flock on ``path``, or ``None`` if another holds it.

    Lock files are unlinked on release to keep the directory small. A waiter may
    therefore win the lock on a file that was just unlinked (or replaced); it
    sees that the path no longer names its file and tries again, so two holders
    can never both believe they own the path.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _still_linked(fd, path):
            return fd
        os.close(fd)


def _still_linked(fd: int, path: Path) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (current.st_dev, current.st_ino)


def _unlock(fd: int, path: Path) -> None:
    """Unlink while still holding the lock, then let close() drop the flock."""
    try:
        with suppress(FileNotFoundError):
            os.unlink(path)
    finally:
        os.close(fd)


def _claim(path: Path, now: float, until: float) -> bool:
    """Claim an event unless an unexpired claim exists; flock makes check-and-set atomic.

    An empty file is one whose creator has not written it yet: it is unclaimed.
    """
    fd = _try_flock(path, block=True)
    assert fd is not None
    try:
        held_until = _parse_float(os.pread(fd, 64, 0))
        if held_until is not None and held_until > now:
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, repr(until).encode(), 0)
        return True
    finally:
        os.close(fd)


def _remove_claim(path: Path) -> None:
    if not path.exists():
        return
    fd = _try_flock(path, block=True)
    assert fd is not None
    _unlock(fd, path)


def _sweep_claims(directory: Path, now: float) -> None:
    """Delete expired claims; busy or vanishing files are left for the next sweep."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        path = directory / name
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held_until = _parse_float(os.pread(fd, 64, 0))
            if held_until is not None and held_until <= now and _still_linked(fd, path):
                os.unlink(path)
        except OSError:
            pass
        finally:
            os.close(fd)


def _parse_float(data: bytes) -> float | None:
    try:
        return float(data)
    except ValueError:
        return None
