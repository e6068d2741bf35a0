"""The MongoDB driver: sessions as documents, with PyMongo's async client.

One document per session holds the session *and* its lock::

    {_id: <session id>, session: {...}, touched_at: <date>,
     lock_owner: <token>, lock_expires: <store clock seconds>}

Keeping the lock in the session's own document is what lets an event cost two
round trips: one ``find_one_and_update`` takes the lock and returns the session,
one ``update_one`` writes it and drops the lock. Taking a lock upserts the
document, so a session that does not exist yet can be locked too; such a
lock-only document has no ``session`` field and is removed on release.

``touched_at`` (server-side real time, bumped by every write and lock) carries
the TTL index that lets MongoDB delete dead sessions; whether a session is
expired is decided at read from its ``last_activity`` and the store's clock,
because TTL sweeps run only once a minute.

Only calls that PyMongo's ``AsyncMongoClient`` and Motor share are used, so a
Motor client handed in as ``client`` works too.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from bson.errors import BSONError
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from bottender.sessions.base import (
    DEFAULT_EVENT_TTL_SECONDS,
    Inbox,
    StoreError,
    StoreUnavailable,
)
from bottender.sessions.leases import DEFAULT_LOCK_LEASE_SECONDS, Acquired, LeasedStore, redact_url
from bottender.sessions.session import Session

DEFAULT_URL = "mongodb://localhost:27017/bottender"
DEFAULT_DATABASE = "bottender"
#: A dead server must fail the request quickly (503, the platform retries) rather
#: than hang it; a URL that sets these options wins.
CLIENT_TIMEOUTS_MS = {
    "serverSelectionTimeoutMS": 2000,
    "connectTimeoutMS": 2000,
    # A server that accepts and then hangs: without it a call would wait forever.
    "socketTimeoutMS": 5000,
}
#: Replica sets: a write is acknowledged once a majority has it, so an election
#: cannot roll back a lock or a session the gateway already counted as written;
#: a write cut off by a step-down is retried once by the driver (retryable
#: writes), then the event gets 503. A URL that sets these options wins.
DURABILITY = {"w": "majority", "retryWrites": True}
SESSION_TTL_INDEX = "touched_at_ttl"
EVENT_TTL_INDEX = "expires_at_ttl"
#: Documents per round trip when listing sessions.
LIST_BATCH = 500
UNLOCK = {"$unset": {"lock_owner": "", "lock_expires": ""}}


class MongoStore(LeasedStore):
    """Sessions in ``collection_name`` of the URL's database (``bottender`` by default).

    Event claims go to ``<collection_name>_events``.
    """

    driver = "mongo"

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        collection_name: str = "sessions",
        client: Any = None,
        expires_in: float | None = None,
        event_ttl: float = DEFAULT_EVENT_TTL_SECONDS,
        lock_lease: float = DEFAULT_LOCK_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(lock_lease=lock_lease, clock=clock)
        self._url = url
        self.display_url = redact_url(url)
        self._database_name, self._url_options = _parse_url(url)
        self._collection_name = collection_name
        self._client = client
        self._owns_client = client is None
        self.expires_in = expires_in
        self._event_ttl = event_ttl
        self._sessions: Any = None
        self._events: Any = None

    async def open(self) -> None:
        if self._sessions is not None:
            return
        if self._client is None:
            defaults = {**CLIENT_TIMEOUTS_MS, **DURABILITY}
            options = {k: v for k, v in defaults.items() if k.lower() not in self._url_options}
            self._client = AsyncMongoClient(self._url, **options)
        database = self._client[self._database_name]
        try:
            await self._client.admin.command("ping")
        except PyMongoError as error:
            await self.close()
            raise StoreUnavailable(
                f"cannot reach MongoDB at {self.display_url}: {short_reason(error)}"
            ) from error
        self._sessions = database[self._collection_name]
        self._events = database[f"{self._collection_name}_events"]
        try:
            with self._errors("creating indexes"):
                await self._events.create_index(
                    "expires_at", expireAfterSeconds=0, name=EVENT_TTL_INDEX
                )
                await self._ensure_session_ttl()
        except StoreError as error:
            await self.close()
            raise StoreUnavailable(str(error)) from error

    async def close(self) -> None:
        """Close the client this store made; one handed in belongs to the caller."""
        self._sessions = self._events = None
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def server_time(self) -> float | None:
        """The server's ``hello.localTime``: leases are written against this clock's peers."""
        with self._errors("reading the server's time"):
            assert self._client is not None
            answer = await self._client.admin.command("hello")
        moment = answer.get("localTime")
        if moment is None:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()

    def inbox(self) -> Inbox:
        """The durable inbox in ``<collection_name>_inbox``: sessions/mongo_inbox.py."""
        from bottender.sessions.mongo_inbox import MongoInbox

        if getattr(self, "_inbox", None) is None:
            self._inbox = MongoInbox(self)
        return self._inbox

    async def read(self, key: str) -> Session | None:
        with self._errors(f"reading session {key!r}"):
            doc = await self._sessions.find_one({"_id": key}, {"session": 1})
        return self._live_session(doc)

    async def write(self, session: Session) -> None:
        # $set, not a replacement: a lock held on the document must survive the write.
        with self._errors(f"writing session {session.id!r}"):
            await self._sessions.update_one(
                {"_id": session.id}, {"$set": self._fields(session)}, upsert=True
            )

    async def destroy(self, key: str) -> None:
        with self._errors(f"destroying session {key!r}"):
            deleted = await self._sessions.delete_one(
                {"_id": key, "lock_owner": {"$exists": False}}
            )
            if not deleted.deleted_count:
                # Someone holds its lock: keep the lock, drop the session.
                await self._sessions.update_one({"_id": key}, {"$unset": {"session": ""}})

    async def all(self) -> AsyncIterator[Session]:
        with self._errors("listing sessions"):
            async for doc in self._sessions.find({"session": {"$exists": True}}, {"session": 1}):
                session = self._live_session(doc)
                if session is not None:
                    yield session

    async def claim_event(self, event_id: str) -> bool:
        now = self._clock()
        try:
            with self._errors(f"claiming event {event_id!r}"):
                await self._events.update_one(
                    {"_id": event_id, "expires": {"$lte": now}},
                    {
                        "$set": {
                            "expires": now + self._event_ttl,
                            "expires_at": _real_time(self._event_ttl),
                        }
                    },
                    upsert=True,
                )
        except _Held:
            return False
        return True

    async def release_event(self, event_id: str) -> None:
        with self._errors(f"releasing event {event_id!r}"):
            await self._events.delete_one({"_id": event_id})

    async def _try_acquire(self, key: str, token: str, *, read: bool) -> Acquired | None:
        now = self._clock()
        free = [
            {"lock_expires": {"$exists": False}},
            {"lock_expires": {"$lte": now}},
            {"lock_owner": token},  # a retried command must not lock us out
        ]
        try:
            with self._errors(f"locking session {key!r}"):
                doc = await self._sessions.find_one_and_update(
                    {"_id": key, "$or": free},
                    {
                        "$set": {
                            "lock_owner": token,
                            "lock_expires": now + self._lock_lease,
                            "touched_at": _real_time(),
                        }
                    },
                    projection={"session": 1} if read else {"session.id": 1},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
        except _Held:
            return None
        existed = doc is not None and "session" in doc
        return Acquired(doc if read else None, existed=existed)

    def _load(self, key: str, data: dict[str, Any] | None) -> Session | None:
        return self._live_session(data)

    async def _renew(self, key: str, token: str) -> bool:
        with self._errors(f"renewing the lock on session {key!r}"):
            result = await self._sessions.update_one(
                {"_id": key, "lock_owner": token},
                {
                    "$set": {
                        "lock_expires": self._clock() + self._lock_lease,
                        "touched_at": _real_time(),
                    }
                },
            )
        return bool(result.matched_count)

    async def _release(self, key: str, token: str, acquired: Acquired) -> None:
        with self._errors(f"unlocking session {key!r}"):
            if not acquired.existed:
                deleted = await self._sessions.delete_one(
                    {"_id": key, "lock_owner": token, "session": {"$exists": False}}
                )
                if deleted.deleted_count:
                    return
            await self._sessions.update_one({"_id": key, "lock_owner": token}, UNLOCK)

    async def _write_release(self, key: str, token: str, session: Session) -> bool:
        with self._errors(f"writing session {key!r}"):
            result = await self._sessions.update_one(
                {"_id": key, "lock_owner": token}, {"$set": self._fields(session), **UNLOCK}
            )
        return bool(result.matched_count)

    async def _ensure_session_ttl(self) -> None:
        """Make the TTL index match ``expires_in``, replacing one left by another setting."""
        wanted = None if self.expires_in is None else max(1, math.ceil(self.expires_in * 60))
        index = (await self._sessions.index_information()).get(SESSION_TTL_INDEX)
        if index is not None and index.get("expireAfterSeconds") != wanted:
            await self._sessions.drop_index(SESSION_TTL_INDEX)
            index = None
        if index is None and wanted is not None:
            await self._sessions.create_index(
                "touched_at", expireAfterSeconds=wanted, name=SESSION_TTL_INDEX
            )

    def _fields(self, session: Session) -> dict[str, Any]:
        return {"session": session.to_dict(), "touched_at": _real_time()}

    def _live_session(self, doc: dict[str, Any] | None) -> Session | None:
        if doc is None or "session" not in doc:
            return None
        try:
            session = Session.from_dict(doc["session"])
        except (KeyError, TypeError, AttributeError) as error:
            raise StoreError(
                f"MongoDB at {self.display_url}: session {doc.get('_id')!r} is corrupt"
            ) from error
        if session.is_expired(self._clock(), self.expires_in):
            return None
        return session

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Every failure of the server, or of encoding for it, becomes a StoreError (503).

        A duplicate key is not a failure here: it is how MongoDB says a lock or
        an event claim is already held, so it surfaces as :class:`_Held`. The BSON
        encoder refuses a value as ``InvalidDocument`` (a BSONError), an integer
        past int64 as ``OverflowError``, a too deep document as ``RecursionError``:
        ``set_state`` refuses all of these first, but a session must never fail
        its write as anything but a StoreError.
        """
        if self._sessions is None:
            raise StoreError(f"MongoDB store at {self.display_url} is not open ({doing})")
        try:
            yield
        except DuplicateKeyError as error:
            raise _Held from error
        except (PyMongoError, BSONError, OverflowError, RecursionError) as error:
            raise StoreError(
                f"MongoDB at {self.display_url}: {doing} failed: {short_reason(error)}"
            ) from error

    # --- operators' primitives ----------------------------------------------------

    async def list_sessions(self, limit: int | None = None) -> AsyncIterator[Session]:
        """A cursor read in batches; the limit is the server's."""
        if limit is not None and limit <= 0:
            return
        with self._errors("listing sessions"):
            cursor = self._sessions.find({"session": {"$exists": True}}, {"session": 1})
            cursor = cursor.batch_size(LIST_BATCH)
            if limit is not None:
                cursor = cursor.limit(limit)
            async for doc in cursor:
                session = self._live_session(doc)
                if session is not None:
                    yield session

    async def delete(self, key: str) -> bool:
        """Take the session's lock, then delete the document with the lock in it."""
        async with self._local(key):
            token, acquired = await self._acquire(key, read=False)
            try:
                with self._errors(f"deleting session {key!r}"):
                    await self._sessions.delete_one({"_id": key, "lock_owner": token})
            except BaseException:
                await self._release_quietly(key, token, acquired)
                raise
        return acquired.existed


class _Held(Exception):
    """An upsert met an existing unexpired document: the lock or claim belongs to someone."""


#: What PyMongo appends to a server-selection error: its timeouts, then the whole topology.
_SELECTION_DETAIL = re.compile(r" \(configured timeouts:[^)]*\)|, Timeout: .*$", re.DOTALL)


def short_reason(error: BaseException) -> str:
    """PyMongo's reason without the topology description it appends (one short line)."""
    text = _SELECTION_DETAIL.sub("", str(error)).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _real_time(after: float = 0.0) -> datetime:
    """Wall-clock time for TTL indexes: the server sweeps by its own clock, not ours."""
    return datetime.now(UTC) + timedelta(seconds=after)


def _parse_url(url: str) -> tuple[str, set[str]]:
    """The database named in the URL path and the (lower-cased) options the URL sets.

    Parsed by hand because PyMongo's parser resolves ``mongodb+srv`` names in DNS.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mongodb", "mongodb+srv"):
        raise ValueError(f"not a MongoDB URL: {redact_url(url)}")
    database = unquote(parts.path.lstrip("/")) or DEFAULT_DATABASE
    options = {name.lower() for name, _ in parse_qsl(parts.query)}
    return database, options
