"""Build the enabled channels' connectors from the config, by platform name."""

from __future__ import annotations

from typing import Any

from bottender.connectors import registry
from bottender.connectors.base import Connector
from bottender.server.config import Config, ConfigError

#: Keys of a channel's config that are the server's business, not the connector's.
SERVER_KEYS = ("enabled", "deadline", "platform", "ack")


def build_connectors(config: Config, *, polling_only: bool = False) -> list[Connector]:
    """One connector per enabled channel (with ``polling_only``, those that can poll)."""
    connectors = []
    for name, channel in config.channels.items():
        connector_class = registry.connector_class(channel["platform"])
        if polling_only and not connector_class.can_poll:
            continue
        options: dict[str, Any] = {k: v for k, v in channel.items() if k not in SERVER_KEYS}
        try:
            connectors.append(
                connector_class(channel=name, initial_state=config.initial_state, **options)
            )
        except TypeError as exc:
            raise ConfigError(f"channels.{name}: {exc}") from None
    return connectors


def skipped_for_polling(config: Config) -> list[str]:
    """One line per enabled channel that cannot poll, for ``--polling`` to print."""
    lines = []
    polled = 0
    for name, channel in config.channels.items():
        connector_class = registry.connector_class(channel["platform"])
        polled += connector_class.can_poll
        if not connector_class.can_poll:
            lines.append(
                f"{connector_class.display_name} channel {name!r} skipped:"
                f" {connector_class.display_name} cannot poll; it needs a webhook"
                " (run without --polling, behind a tunnel or a public URL)"
            )
    if not polled:
        can = [
            registry.connector_class(platform).display_name
            for platform in registry.platforms()
            if registry.connector_class(platform).can_poll
        ]
        lines.append(
            "No enabled channel can poll: nothing will reach the bot"
            f" (platforms that can: {', '.join(can)})"
        )
    return lines


def display_name(config: Config, name: str) -> str:
    return registry.connector_class(config.channels[name]["platform"]).display_name
