"""The ASGI factory uvicorn imports in each worker process.

Workers are separate processes, so they cannot be handed the parent's config
object; they load it again from the paths the parent put in the environment.
Those variables are the project's own (``BOTTENDER_WORKER_*``), never names a
config or ``.env`` reads: a value handed down must not shadow what an edited
``.env`` says when ``bottender dev`` reloads.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette

from bottender.server.app import create_app
from bottender.server.config import load_config

#: The config file's path, for the worker processes.
CONFIG_ENV = "BOTTENDER_WORKER_CONFIG"
#: ``--app`` given on the command line (set only then: otherwise the config decides).
APP_ENV = "BOTTENDER_WORKER_APP"
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
