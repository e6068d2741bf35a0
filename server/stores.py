"""Build the configured session store.

Drivers are imported only when chosen, so a bot on the memory store never
pays for importing the Redis or MongoDB clients.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable
from typing import Any

from bottender.server.config import Config, ConfigError, refuse_unknown
from bottender.sessions.base import SessionStore

#: driver name -> "module:class"
DRIVER_CLASSES = {
    "memory": "bottender.sessions.memory:MemoryStore",
    "file": "bottender.sessions.file:FileStore",
    "redis": "bottender.sessions.redis:RedisStore",
    "mongo": "bottender.sessions.mongo:MongoStore",
}
#: Bottender's camelCase option names, accepted for users porting a config.
ALIASES = {"maxSize": "max_size", "collectionName": "collection_name"}


def build_store(config: Config, *, clock: Callable[[], float] = time.time) -> SessionStore:
    module_name, _, class_name = DRIVER_CLASSES[config.driver].partition(":")
    store_class = getattr(importlib.import_module(module_name), class_name)
    accepted = inspect.signature(store_class).parameters
    options: dict[str, Any] = {ALIASES.get(k, k): v for k, v in config.store_options.items()}
    allowed = sorted(p for p in accepted if p not in ("clock", "expires_in"))
    refuse_unknown(options, f"session.stores.{config.driver}", allowed)
    if "expires_in" in accepted:
        options["expires_in"] = config.expires_in
    if "clock" in accepted:
        options["clock"] = clock
    try:
        return store_class(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"session.stores.{config.driver}: {exc}") from None
