"""Build the enabled connectors from the config's ``channels``."""

from __future__ import annotations

from typing import Any

from bottender.connectors.base import Connector
from bottender.connectors.line import LineConnector
from bottender.connectors.telegram import TelegramConnector
from bottender.server.config import Config, ConfigError

CONNECTOR_CLASSES: dict[str, type[Connector]] = {
    "line": LineConnector,
    "telegram": TelegramConnector,
}
#: Keys of a channel's config that are the server's business, not the connector's.
SERVER_KEYS = ("enabled", "deadline", "ack")


def build_connectors(config: Config) -> list[Connector]:
    connectors = []
    for name, channel in config.channels.items():
        options: dict[str, Any] = {k: v for k, v in channel.items() if k not in SERVER_KEYS}
        try:
            connectors.append(
                CONNECTOR_CLASSES[name](initial_state=config.initial_state, **options)
            )
        except TypeError as exc:
            raise ConfigError(f"channels.{name}: {exc}") from None
    return connectors
