"""The file driver: safe names, atomic writes, and locks shared by the processes of a host."""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
import time
from pathlib import Path

import pytest

from bottender.sessions.base import StoreError, StoreUnavailable
from bottender.sessions.file import FileStore, file_name
from bottender.sessions.session import Session
from tests.sessions.drivers import (
    FakeClock,
    FileBackend,
    expect_line,
    run_counters,
    start_worker,
    stop_worker,
)

CRAFTED_IDS = [
    "../../etc/passwd",
    "/etc/passwd",
    "..",
    ".",
    "",
    "a/b",
    "a_b",
    "a:b",
    "a\x00b",
    "a\\b",
    "a\nb",
    "locks/../x",
    "events/x",
    ".hidden",
    "x.json",
    ".x.tmp",
    "x" * 5000,
    "日本語の会話",
    "line:U" + "é" * 300,
    "emoji:🤖",
]
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{0,40}-[0-9a-f]{64}\.json$")


def all_files(root: Path) -> set[Path]:
    return {Path(folder) / name for folder, _, names in os.walk(root) for name in names}


async def test_no_session_id_escapes_the_directory_or_meets_another(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path / "sessions"))
    await store.open()
    sessions = {key: Session(key, {"key": key}) for key in CRAFTED_IDS}

    for session in sessions.values():
        await store.write(session)
        async with store.lock(session.id):
            pass
        assert await store.claim_event(session.id) is True

    for key, session in sessions.items():
        assert await store.read(key) == session
    assert {session.id: session async for session in store.all()} == sessions
    await store.close()
    outside = {path for path in all_files(tmp_path) if tmp_path / "sessions" not in path.parents}
    assert outside == set()
    names = os.listdir(tmp_path / "sessions")
    session_files = [name for name in names if name.endswith(".json")]
    assert len(session_files) == len(CRAFTED_IDS)
    assert all(SAFE_NAME.match(name) for name in session_files), session_files


def test_file_names_keep_a_readable_prefix() -> None:
    assert file_name("line:U123").startswith("line_U123-")
    assert len({file_name("a/b"), file_name("a_b"), file_name("a:b")}) == 3


async def test_a_cancelled_write_keeps_the_lock_until_the_file_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread cannot be stopped: the lock must outlive it, or a newer write is overwritten."""
    store = FileStore(str(tmp_path / "sessions"))
    await store.open()
    in_fsync, real_fsync = asyncio.Event(), os.fsync
    fsync_done = threading.Event()
    loop = asyncio.get_running_loop()

    def slow_fsync(fd: int) -> None:
        loop.call_soon_threadsafe(in_fsync.set)
        time.sleep(0.3)
        real_fsync(fd)
        fsync_done.set()

    async def save(count: int) -> None:
        async with store.checkout("line:U1") as checkout:
            checkout.save(Session("line:U1", {"count": count}))

    replaced: list[str] = []
    both_replaced = threading.Event()
    real_replace = os.replace

    def noted_replace(source: str, target: object) -> None:
        real_replace(source, target)
        replaced.append(source)
        if len(replaced) == 2:
            both_replaced.set()

    monkeypatch.setattr(os, "replace", noted_replace)
    monkeypatch.setattr(os, "fsync", slow_fsync)
    first = asyncio.create_task(save(1))
    await in_fsync.wait()
    first.cancel()
    monkeypatch.setattr(os, "fsync", real_fsync)
    second = asyncio.create_task(save(2))
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    await asyncio.to_thread(fsync_done.wait, 5)
    # The first write's rename too, however late it comes.
    assert await asyncio.to_thread(both_replaced.wait, 10)

    assert (await store.read("line:U1")).state == {"count": 2}
    await store.close()


async def test_a_killed_writer_leaves_the_old_or_the_new_session_whole(
    file_backend: FileBackend,
) -> None:
    store = await file_backend.make()
    size = 1_000_000

    def check(session: Session | None) -> None:
        assert session is not None
        blob, version = session.state["blob"], session.state["version"]
        assert blob == chr(ord("a") + version % 26) * size

    for _ in range(4):
        worker = start_worker(file_backend, "write-loop", "line:U1", str(size))
        try:
            expect_line(worker, "writing")
            deadline = time.monotonic() + random.uniform(0.05, 0.2)
            while time.monotonic() < deadline:  # readers never see a partial file either
                check(await store.read("line:U1"))
        finally:
            stop_worker(worker)
        check(await store.read("line:U1"))
        assert [session.id async for session in store.all()] == ["line:U1"]


async def test_processes_sharing_the_directory_lose_no_update(file_backend: FileBackend) -> None:
    store = await file_backend.make()

    await asyncio.to_thread(run_counters, file_backend, "line:U1", workers=4, times=25)

    stored = await store.read("line:U1")
    assert stored is not None and stored.state == {"n": 100}


async def test_a_crashed_holder_frees_its_lock(file_backend: FileBackend) -> None:
    store = await file_backend.make()
    worker = start_worker(file_backend, "hold", "line:U1")
    try:
        expect_line(worker, "locked")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2), store.lock("line:U1"):
                pass
    finally:
        stop_worker(worker)

    async with asyncio.timeout(2), store.lock("line:U1"):
        pass


async def test_open_names_a_directory_it_cannot_use(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the directory should be")
    store = FileStore(str(blocker / "sessions"))

    with pytest.raises(StoreUnavailable, match=re.escape(str(blocker / "sessions"))):
        await store.open()


async def test_a_corrupt_session_file_is_an_error_not_a_new_conversation(
    file_backend: FileBackend,
) -> None:
    store = await file_backend.make()
    await store.write(Session("line:U1", {"count": 5}))
    path = file_backend.directory / (file_name("line:U1") + ".json")
    path.write_bytes(b'{"id": "line:U1", "state": {"cou')

    with pytest.raises(StoreError, match="corrupt"):
        await store.read("line:U1")
    with pytest.raises(StoreError):
        [session async for session in store.all()]


async def test_an_unreadable_session_file_is_an_error(file_backend: FileBackend) -> None:
    store = await file_backend.make()
    (file_backend.directory / (file_name("line:U1") + ".json")).mkdir()

    with pytest.raises(StoreError, match="line_U1"):
        await store.read("line:U1")
    with pytest.raises(StoreError):
        await store.write(Session("line:U1"))


async def test_a_vanished_directory_is_an_error_not_an_empty_store(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path / "sessions"))
    await store.open()
    for folder in ("locks", "events", ""):
        (tmp_path / "sessions" / folder).rmdir()

    with pytest.raises(StoreError, match="missing"):
        await store.read("line:U1")
    with pytest.raises(StoreError):
        await store.write(Session("line:U1"))
    with pytest.raises(StoreError):
        await store.claim_event("evt-1")
    with pytest.raises(StoreError):
        async with store.lock("line:U1"):
            pass


async def test_expired_event_claims_are_swept_at_open(
    file_backend: FileBackend, clock: FakeClock
) -> None:
    store = await file_backend.make(clock=clock, event_ttl=60)
    for index in range(3):
        await store.claim_event(f"old-{index}")
    clock.advance(30)
    await store.claim_event("recent")
    await store.close()

    clock.advance(40)
    reopened = await file_backend.make(clock=clock, event_ttl=60)
    await reopened.close()

    assert os.listdir(file_backend.directory / "events") == [file_name("recent")]


async def test_temp_files_a_killed_writer_left_are_cleaned_up_at_open(
    file_backend: FileBackend,
) -> None:
    directory = file_backend.directory
    directory.mkdir(parents=True)
    (directory / ".old.tmp").write_bytes(b"half a session")
    os.utime(directory / ".old.tmp", (time.time() - 7200, time.time() - 7200))
    (directory / ".inflight.tmp").write_bytes(b"another process is writing this")

    await file_backend.make()

    assert sorted(name for name in os.listdir(directory) if name.endswith(".tmp")) == [
        ".inflight.tmp"
    ]
