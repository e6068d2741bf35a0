"""What ``bottender start`` checks and says before it serves.

A newcomer's first run must not be silent: the banner lists the app, the store
and every enabled channel with its webhook path, and a config with no channel
at all is called out (every webhook would get 404). A port already taken and a
token the platform refuses are found here, once, in the parent process, rather
than as a uvicorn traceback or as "bot raised" at the first reply.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from bottender.connectors import registry
from bottender.connectors.api import PlatformApiError
from bottender.connectors.base import Connector
from bottender.server.channels import build_connectors
from bottender.server.config import Config

logger = logging.getLogger("bottender.server")

#: How long the start-up token check waits for a platform before it moves on.
TOKEN_CHECK_SECONDS = 5.0


class StartupError(Exception):
    """The server cannot start; the message says why and what to do."""


def check_port_free(host: str, port: int) -> None:
    """Fail in one line when ``host:port`` is taken, before anything else is started."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {host}:{port} ({exc.strerror}); stop what uses it or pass --port"
            ) from None


def _platform(platform: str) -> str:
    """How people write the platform's name (the connector's ``display_name``)."""
    try:
        return registry.connector_class(platform).display_name or platform
    except KeyError:
        return platform


def banner(
    config: Config,
    *,
    host: str,
    port: int,
    bots: Mapping[str, str] | None = None,
    polling: bool = False,
) -> list[str]:
    """The lines ``bottender start`` prints before serving (``bots``: who each channel is)."""
    expiry = (
        f"sessions expire after {config.expires_in:g} min of inactivity"
        if config.expires_in
        else "sessions never expire"
    )
    lines = [
        f"Bottender: app {config.app_ref}",
        f"Session store: {config.driver} ({expiry})",
    ]
    for name, channel in config.channels.items():
        bot = f" ({bots[name]})" if bots and bots.get(name) else ""
        shown = _platform(channel["platform"])
        if name != channel["platform"]:
            shown = f"{shown} ({name})"
        if polling:
            can_poll = registry.connector_class(channel["platform"]).can_poll
            how = "polling for updates" if can_poll else "skipped (needs a webhook)"
            lines.append(f"{shown + ':':<18} {how}{bot}")
        else:
            lines.append(f"{shown + ' webhook:':<18} POST {channel['path']}{bot}")
    lines.append(f"Listening on http://{host}:{port}")
    return lines


def no_channel_warning(config: Config) -> str | None:
    """A warning when nothing would ever reach the bot over HTTP."""
    if config.channels:
        return None
    tokens = " or ".join(
        registry.connector_class(platform).env_names["access_token"]
        for platform in registry.platforms()
        if "access_token" in registry.connector_class(platform).env_names
    )
    return (
        f"no channel is enabled in {config.path.name}: every webhook will get 404"
        f" (set {tokens} in .env, or enable a channel in the config)"
    )


@dataclass
class TokenCheck:
    """What the platforms said: who each accepted channel's bot is, and one warning per other."""

    bots: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


async def check_tokens(config: Config, *, within: float = TOKEN_CHECK_SECONDS) -> TokenCheck:
    """Ask each enabled channel's platform about its token, all at once.

    Never fatal: a build machine may not reach the platform at all, and the
    webhook server is still worth starting.
    """
    connectors = build_connectors(config)
    names = [connector.channel for connector in connectors]
    async with aiohttp.ClientSession() as http:
        for connector in connectors:
            await connector.start(http)
        results = await asyncio.gather(
            *(_check(name, c, within) for name, c in zip(names, connectors, strict=True))
        )
    check = TokenCheck()
    for name, (bot, warning) in zip(names, results, strict=True):
        if bot:
            check.bots[name] = bot
        if warning:
            check.warnings.append(warning)
    return check


async def _check(name: str, connector: Connector, within: float) -> tuple[str | None, str | None]:
    """(who the bot is, None) when the token is accepted, else (None, a warning)."""
    platform = connector.display_name or connector.platform
    try:
        async with asyncio.timeout(within):
            return await connector.check_token(), None
    except TimeoutError:
        return None, (
            f"channel {name!r}: could not check the {platform} access token"
            f" (no answer within {within:g} s); starting anyway"
        )
    except PlatformApiError as exc:
        if exc.status == 0:
            return None, f"channel {name!r}: could not check the {platform} access token ({exc})"
        return None, (
            f"channel {name!r}: {platform} refused the access token ({exc.status} {exc.reason});"
            " replies will fail until it is fixed"
        )
