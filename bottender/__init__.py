"""The one import name of the gateway: a facade over its three floors.

The floors live in the repository's ``server/``, ``connectors/`` and ``sessions/`` folders
and are installed as ``bottender.server``, ``bottender.connectors`` and
``bottender.sessions``, so a bot project may have modules of those names of its own. This
module only re-exports the names of the bot author's API; it holds no logic.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from bottender.connectors import line_routes as line
from bottender.connectors import telegram_routes as telegram
from bottender.connectors.base import Context, StateWarning
from bottender.connectors.router import chain, payload, platform, route, router, text, with_props

try:
    __version__ = _version("bottender-py")
except PackageNotFoundError:  # pragma: no cover - running from a source tree, not installed
    __version__ = "0.0.0"

__all__ = [
    "Context",
    "StateWarning",
    "__version__",
    "chain",
    "line",
    "payload",
    "platform",
    "route",
    "router",
    "telegram",
    "text",
    "with_props",
]
