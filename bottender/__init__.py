"""The one import name of the gateway: a facade over its three floors.

The floors live in the repository's ``server/``, ``connectors/`` and ``sessions/`` folders
and are installed as ``bottender.server``, ``bottender.connectors`` and
``bottender.sessions``, so a bot project may have modules of those names of its own. This
module only re-exports the names of the bot author's API; it holds no logic.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

from bottender.connectors import line_routes as line
from bottender.connectors import telegram_routes as telegram
from bottender.connectors.base import Context, StateWarning
from bottender.connectors.router import chain, payload, platform, route, router, text, with_props

if TYPE_CHECKING:
    from bottender.server.app import create_app
    from bottender.server.bot import Bot

try:
    __version__ = _version("bottender-py")
except PackageNotFoundError:  # pragma: no cover - running from a source tree, not installed
    __version__ = "0.0.0"

#: Names of the server floor, imported when first used: ``import bottender`` (and a bot
#: module importing ``Context``) stays as light as the connectors.
_SERVER_NAMES = {"Bot": "bottender.server.bot", "create_app": "bottender.server.app"}


def __getattr__(name: str) -> Any:
    if name in _SERVER_NAMES:
        import importlib

        return getattr(importlib.import_module(_SERVER_NAMES[name]), name)
    raise AttributeError(f"module 'bottender' has no attribute {name!r}")


__all__ = [
    "Bot",
    "Context",
    "StateWarning",
    "__version__",
    "chain",
    "create_app",
    "line",
    "payload",
    "platform",
    "route",
    "router",
    "telegram",
    "text",
    "with_props",
]
