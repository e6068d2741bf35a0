"""The file inbox across real processes: a process's OS locks are its entries' leases.

tests/sessions/test_inbox.py holds every driver to the inbox contract within one
process (closing an inbox stands for its owner's death). Here the owner is another
process killed with SIGKILL, as in a crash: nothing of its own runs to let go, and
only the kernel, dropping its locks, can hand its entries on.
"""

from __future__ import annotations

from bottender.sessions.base import Inbox, InboxEntry
from tests.sessions.drivers import FileBackend, expect_line, start_worker, stop_worker
from tests.sessions.worker import WORKER_OWNER

SURVIVOR = "s" * 32


async def inbox_of(backend: FileBackend) -> Inbox:
    store = await backend.make()
    inbox = store.inbox()
    assert inbox is not None
    return inbox


async def test_a_killed_process_leaves_the_entries_it_wrote_to_the_others(
    file_backend: FileBackend,
) -> None:
    inbox = await inbox_of(file_backend)
    worker = start_worker(file_backend, "put-entries", "entry", "3")
    try:
        expect_line(worker, "holding")
        # Alive, it runs them: nobody else may.
        assert await inbox.claim(SURVIVOR, 10) == []
    finally:
        stop_worker(worker)

    claimed = await inbox.claim(SURVIVOR, 10)
    assert sorted(entry.id for entry in claimed) == ["entry-0", "entry-1", "entry-2"]
    assert {entry.previous_owner for entry in claimed} == {WORKER_OWNER}
    assert await inbox.claim("t" * 32, 10) == []  # now the survivor's alone


async def test_an_entry_recovered_by_a_process_that_dies_in_turn_is_recovered_again(
    file_backend: FileBackend,
) -> None:
    inbox = await inbox_of(file_backend)
    await inbox.put(InboxEntry("entry-1", "line", b"{}"), owner=None)
    worker = start_worker(file_backend, "claim-entries", "-", "10")
    try:
        expect_line(worker, "claimed 1")
        assert await inbox.claim(SURVIVOR, 10) == []
    finally:
        stop_worker(worker)

    (claimed,) = await inbox.claim(SURVIVOR, 10)
    assert (claimed.id, claimed.previous_owner) == ("entry-1", WORKER_OWNER)
