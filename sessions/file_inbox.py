"""The file driver's part of the durable inbox (the contract is in sessions/base.py).

One file per entry in ``<dirname>/inbox/``, named from a hash of its id::

    <safe prefix>-<sha256 of id>.entry
        {"owner":"<token, padded to 32>","id":...,"channel":...}\\n<webhook body>

Written like a session (temporary file, fsync, rename, fsync of the directory).
The owner holds an exclusive ``flock`` on the entry's file for as long as it
runs the entry, taken on the temporary file before the rename, so the entry is
never visible unowned. The kernel drops the lock when the owner dies: any other
process of the host can then take the lock and run the entry. No lease is
needed, and recovery is as quick as the next look at the directory.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from bottender.sessions.base import Inbox, InboxEntry, StoreError

if TYPE_CHECKING:
    from bottender.sessions.file import FileStore

SUFFIX = ".entry"
#: The owner token sits at a fixed place and width, so a claimer overwrites it in place.
OWNER_AT = len(b'{"owner":"')
OWNER_WIDTH = 32


def _owner_field(owner: str | None) -> bytes:
    return (owner or "")[:OWNER_WIDTH].ljust(OWNER_WIDTH).encode()


class FileInbox(Inbox):
    def __init__(self, store: FileStore) -> None:
        self._store = store
        self._dir = store.dirname / "inbox"
        #: entry id -> (fd holding its flock, its path)
        self._held: dict[str, tuple[int, Path]] = {}

    def _path(self, entry_id: str) -> Path:
        from bottender.sessions.file import file_name

        return self._dir / (file_name(entry_id) + SUFFIX)

    async def put(self, entry: InboxEntry, *, owner: str | None) -> None:
        rest = orjson.dumps({"id": entry.id, "channel": entry.channel})
        header = b'{"owner":"' + _owner_field(owner) + b'",' + rest[1:]
        path = self._path(entry.id)
        try:
            fd = await asyncio.to_thread(
                _write_entry, self._dir, path, header + b"\n" + entry.body, owner is not None
            )
        except OSError as error:
            raise StoreError(
                f"file store {self._dir}: writing inbox entry failed: {error}"
            ) from error
        if fd is not None:
            self._release(entry.id)
            self._held[entry.id] = (fd, path)

    async def claim(self, owner: str, limit: int) -> list[InboxEntry]:
        held = {path.name for _, path in self._held.values()}
        try:
            found = await asyncio.to_thread(_claim_entries, self._dir, held, limit, owner)
        except OSError as error:
            raise StoreError(
                f"file store {self._dir}: claiming inbox entries failed: {error}"
            ) from error
        entries = []
        for entry, fd, path in found:
            self._held[entry.id] = (fd, path)
            entries.append(entry)
        return entries

    async def renew(self, owner: str, ids: Iterable[str]) -> None:
        """Nothing to renew: the kernel holds the locks for as long as the process lives."""

    async def remove(self, entry_id: str) -> None:
        held = self._held.pop(entry_id, None)
        try:
            if held is None:
                with suppress(FileNotFoundError):
                    os.unlink(self._path(entry_id))
                return
            fd, path = held
            try:
                if _still_linked(fd, path):
                    os.unlink(path)
            finally:
                os.close(fd)
        except OSError as error:
            raise StoreError(
                f"file store {self._dir}: removing inbox entry failed: {error}"
            ) from error

    async def drop(self, entry_id: str, owner: str) -> None:
        self._release(entry_id)

    def _release(self, entry_id: str) -> None:
        held = self._held.pop(entry_id, None)
        if held is not None:
            os.close(held[0])

    def close(self) -> None:
        """Let go of every entry still held: other processes may run them at once."""
        for entry_id in list(self._held):
            self._release(entry_id)


def _write_entry(directory: Path, path: Path, data: bytes, owned: bool) -> int | None:
    directory.mkdir(parents=True, exist_ok=True)
    temp = directory / f".{os.urandom(8).hex()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        if owned:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else has it
        os.replace(temp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        os.close(fd)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    if owned:
        return fd
    os.close(fd)
    return None


def _claim_entries(
    directory: Path, held: set[str], limit: int, owner: str
) -> list[tuple[InboxEntry, int, Path]]:
    """Lock up to ``limit`` entries nobody holds, oldest first, noting ``owner`` in each."""
    try:
        found = [
            (entry.stat().st_mtime_ns, entry.name)
            for entry in os.scandir(directory)
            if entry.name.endswith(SUFFIX) and entry.name not in held
        ]
    except FileNotFoundError:
        return []
    claimed: list[tuple[InboxEntry, int, Path]] = []
    for _, name in sorted(found):
        if len(claimed) >= limit:
            break
        path = directory / name
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not _still_linked(fd, path):
                raise BlockingIOError
            data = os.pread(fd, os.fstat(fd).st_size, 0)
            header, _, body = data.partition(b"\n")
            meta = orjson.loads(header)
            os.pwrite(fd, _owner_field(owner), OWNER_AT)
        except (BlockingIOError, orjson.JSONDecodeError):
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        entry = InboxEntry(meta["id"], meta["channel"], body, meta["owner"].strip() or None)
        claimed.append((entry, fd, path))
    return claimed


def _still_linked(fd: int, path: Path) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (current.st_dev, current.st_ino)
