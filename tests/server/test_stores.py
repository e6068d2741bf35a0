"""Building the configured store: options reach the driver, a client can be handed in."""

from __future__ import annotations

import time
from pathlib import Path

from bottender.server.config import load_config
from bottender.server.stores import build_store
from bottender.sessions.session import Session


async def test_a_mongo_client_made_in_the_config_is_used_and_left_open(
    tmp_path: Path, mongo_server: str
) -> None:
    config_file = tmp_path / "bottender_config.py"
    config_file.write_text(
        "from pymongo import AsyncMongoClient\n"
        'app = "tests.bots:counter"\n'
        "client = AsyncMongoClient(" + repr(mongo_server) + ")\n"
        'session = {"driver": "mongo", "expires_in": 5, "stores": {"mongo": {\n'
        '    "url": ' + repr(mongo_server.rstrip("/") + "/handed_in") + ",\n"
        '    "collection_name": "chats", "client": client}}}\n'
    )
    config = load_config(config_file)
    store = build_store(config)
    await store.open()
    try:
        await store.write(Session("telegram:1", {"count": 3}, last_activity=time.time()))
        read = await store.read("telegram:1")
    finally:
        await store.close()

    client = config.store_options["client"]
    assert read is not None and read.state == {"count": 3}
    assert store.expires_in == 5
    # The store wrote through the client it was handed, into the URL's database...
    document = await client["handed_in"]["chats"].find_one({"_id": "telegram:1"})
    assert document is not None
    # ...and closing the store leaves the caller's client usable.
    assert await client.admin.command("ping")
    await client.close()
