"""The MongoDB driver's part of the durable inbox (the contract is in sessions/base.py).

One document per entry in ``<collection_name>_inbox``::

    {_id: <entry id>, channel: <name>, body: <webhook body, binary>,
     owner: <token or null>, due: <store clock seconds>}

``due`` is when the entry may be claimed: its owner's lease end, renewed while
it runs, or the time it was put for a free entry (claimed in arrival order). A
claim finds due entries in one query and takes each with an update that matches
only while the entry is as it was found, so two processes can never both take one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bson import Binary

from bottender.sessions.base import Inbox, InboxEntry, StoreError

if TYPE_CHECKING:
    from bottender.sessions.mongo import MongoStore


class MongoInbox(Inbox):
    def __init__(self, store: MongoStore) -> None:
        self._store = store
        self.lease = store._lock_lease
        self._indexed = False

    def _collection(self) -> Any:
        sessions = self._store._sessions
        if sessions is None:
            raise StoreError(f"MongoDB store at {self._store.display_url} is not open")
        return sessions.database[f"{self._store._collection_name}_inbox"]

    async def _ready(self) -> Any:
        collection = self._collection()
        if not self._indexed:
            with self._store._errors("creating the inbox index"):
                await collection.create_index("due")
            self._indexed = True
        return collection

    async def put(self, entry: InboxEntry, *, owner: str | None) -> None:
        now = self._store._clock()
        due = now if owner is None else now + self._store._lock_lease
        from bottender.sessions.mongo import _Held

        document = {
            "channel": entry.channel,
            "body": Binary(entry.body),
            "owner": owner,
            "due": due,
        }
        for attempt in range(2):
            try:
                with self._store._errors(f"writing inbox entry {entry.id!r}"):
                    collection = await self._ready()
                    await collection.replace_one({"_id": entry.id}, document, upsert=True)
                return
            except _Held:
                # Two upserts of one id raced (a platform's resend): the second one retries.
                if attempt:
                    raise StoreError(f"inbox entry {entry.id!r}: concurrent writes") from None

    async def claim(self, owner: str, limit: int) -> list[InboxEntry]:
        """One query finds due entries; each is then taken by an update that only
        matches while it is still as found, so two claimers never both win it."""
        now = self._store._clock()
        until = now + self._store._lock_lease
        entries: list[InboxEntry] = []
        with self._store._errors("claiming inbox entries"):
            collection = await self._ready()
            found = collection.find({"due": {"$lte": now}}).sort("due", 1).limit(limit)
            async for doc in found:
                taken = await collection.update_one(
                    {"_id": doc["_id"], "due": doc["due"], "owner": doc.get("owner")},
                    {"$set": {"owner": owner, "due": until}},
                )
                if taken.modified_count:
                    entries.append(
                        InboxEntry(doc["_id"], doc["channel"], bytes(doc["body"]), doc.get("owner"))
                    )
        return entries

    async def renew(self, owner: str, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        until = self._store._clock() + self._store._lock_lease
        with self._store._errors("renewing inbox leases"):
            await self._collection().update_many(
                {"_id": {"$in": ids}, "owner": owner}, {"$set": {"due": until}}
            )

    async def remove(self, entry_id: str) -> None:
        with self._store._errors(f"removing inbox entry {entry_id!r}"):
            await self._collection().delete_one({"_id": entry_id})

    async def drop(self, entry_id: str, owner: str) -> None:
        with self._store._errors(f"giving back inbox entry {entry_id!r}"):
            await self._collection().update_one(
                {"_id": entry_id, "owner": owner}, {"$set": {"due": self._store._clock()}}
            )
