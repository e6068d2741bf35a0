"""Which connector serves which platform: the one place a platform is named.

A channel's platform is its ``"platform"`` key, or its name when that names a
platform. Adding a platform is a module in connectors/ and one line here.
Modules are imported when first asked for, so a bot pays only for its own.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bottender.connectors.base import Connector

#: platform name -> "module:ConnectorClass"
PLATFORMS: dict[str, str] = {
    "line": "bottender.connectors.line:LineConnector",
    "telegram": "bottender.connectors.telegram:TelegramConnector",
}


def platforms() -> tuple[str, ...]:
    return tuple(PLATFORMS)


def connector_class(platform: str) -> type[Connector]:
    """The connector class of ``platform``; ``KeyError`` for a platform nobody registered."""
    module_name, _, class_name = PLATFORMS[platform].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
