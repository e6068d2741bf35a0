"""Telling the platforms where the bot's webhooks are.

``bottender <platform> webhook <action> [--channel NAME]`` calls the platform
with the channel's token from the config, and ``bottender dev`` uses
:func:`register_all` after opening its tunnel. What each action does on the
platform is the connector's (its ``admin_class``, see connectors/admin.py);
this module finds the channel, the URL and an HTTP client. A refusal prints
the platform's own reason and fails the command, since the bot gets no events
until it is fixed.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import orjson

from bottender.connectors import registry
from bottender.connectors.admin import ChannelAdmin
from bottender.server.config import Config
from bottender.server.tunnels import find_ngrok_url, ngrok_api_url

T = TypeVar("T")


class WebhookError(Exception):
    """A webhook command cannot go on; the message tells the user what to do."""


def channel_name(config: Config, platform: str, name: str | None) -> str:
    """The channel a command is about: ``--channel NAME``, else the one of ``platform``.

    Without ``--channel``, the channel named after the platform is meant, or
    the platform's only enabled channel; with several, the user must say which.
    """
    if name is not None:
        found = config.channels.get(name)
        if found is None:
            raise WebhookError(
                f"channels.{name} is not enabled in {config.path}: set"
                f" channels.{name}.enabled = True and its access_token"
            )
        if found["platform"] != platform:
            raise WebhookError(
                f"channels.{name} is a {found['platform']} channel, not a {platform} one"
            )
        return name
    if platform in config.channels:
        return platform
    mine = [n for n, c in config.channels.items() if c["platform"] == platform]
    if len(mine) == 1:
        return mine[0]
    if mine:
        raise WebhookError(
            f"several {platform} channels are enabled: pass --channel {{{','.join(mine)}}}"
        )
    connector = registry.connector_class(platform)
    token_env = connector.env_names.get("access_token", "its access token")
    raise WebhookError(
        f"channels.{platform} is not enabled in {config.path}: set"
        f" channels.{platform}.enabled = True and its access_token ({token_env} in .env)"
    )


def join_url(public_url: str, path: str) -> str:
    return public_url.rstrip("/") + "/" + path.lstrip("/")


def webhook_url(config: Config, name: str, explicit: str | None) -> str:
    """``--webhook`` as given, else the running ngrok tunnel's URL plus the channel's path."""
    if explicit:
        return explicit
    path = config.channels[name]["path"]
    public_url = find_ngrok_url()
    if public_url is None:
        raise WebhookError(
            f"no webhook URL: pass --webhook https://<your host>{path},"
            f" or run `bottender dev` (no ngrok tunnel answers at {ngrok_api_url()})"
        )
    return join_url(public_url, path)


async def with_http(call: Callable[[aiohttp.ClientSession], Awaitable[T]]) -> T:
    async with aiohttp.ClientSession(json_serialize=lambda obj: orjson.dumps(obj).decode()) as http:
        return await call(http)


def admin(config: Config, name: str, http: aiohttp.ClientSession) -> ChannelAdmin:
    """The operator calls of channel ``name``."""
    settings = config.channels[name]
    admin_class = registry.connector_class(settings["platform"]).admin_class
    if admin_class is None:
        raise WebhookError(f"channels.{name}: its platform has no webhook commands")
    return admin_class(http, name, settings)


def webhook_command(
    config: Config, platform: str, args: argparse.Namespace
) -> tuple[bool, list[str]]:
    """``bottender <platform> webhook <action>``: ``(success, lines to print)``."""

    name = channel_name(config, platform, getattr(args, "channel", None))
    admin_class = registry.connector_class(platform).admin_class
    url = None
    if admin_class is not None and args.action in admin_class.url_actions:
        url = webhook_url(config, name, getattr(args, "webhook", None))
    return asyncio.run(
        with_http(lambda http: admin(config, name, http).run(args.action, args, url))
    )


# --- every channel at once (bottender dev) ----------------------------------


async def register_all(config: Config, public_url: str) -> tuple[dict[str, str], list[str]]:
    """Point every enabled channel at ``public_url`` + its path.

    Returns ``{channel: webhook URL}`` and the lines the platforms' answers
    gave. Raises :class:`PlatformApiError` (naming the platform) on the first
    refusal.
    """
    urls = {name: join_url(public_url, conf["path"]) for name, conf in config.channels.items()}
    lines: list[str] = []

    async def register(http: aiohttp.ClientSession) -> None:
        for name, url in urls.items():
            lines.extend(await admin(config, name, http).register(url))

    if urls:
        await with_http(register)
    return urls, lines
