"""The ASGI factory uvicorn imports in each worker process.

Workers are separate processes, so they cannot be handed the parent's config
object; they load it again from the paths the parent put in the environment.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette

from bottender.server.app import create_app
from bottender.server.config import load_config

CONFIG_ENV = "BOTTENDER_CONFIG"
APP_ENV = "BOTTENDER_APP"
#: Set to "1" by ``--polling``: the workers long-poll instead of serving webhooks.
POLLING_ENV = "BOTTENDER_POLLING"
#: "1" when ``bottender start --ingest-only``: answer and fill the inbox, run nothing.
INGEST_ONLY_ENV = "BOTTENDER_INGEST_ONLY"


def create() -> Starlette:
    config = load_config(os.environ.get(CONFIG_ENV), app_override=os.environ.get(APP_ENV) or None)
    return create_app(
        config,
        polling=os.environ.get(POLLING_ENV) == "1",
        ingest_only=os.environ.get(INGEST_ONLY_ENV) == "1",
    )
