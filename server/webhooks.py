"""Telling LINE and Telegram where the bot's webhooks are.

``bottender telegram webhook set|get|delete`` and ``bottender line webhook
set|get|test`` call the platform with the channel's token from the config, and
``bottender dev`` uses :func:`register_all` after opening its tunnel. Each
command prints what the platform answered, in words; a refusal prints the
platform's own reason and fails the command, since the bot gets no events
until it is fixed.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import orjson

from bottender.connectors.api import PlatformApiError
from bottender.connectors.line_api import DEFAULT_ORIGIN as LINE_ORIGIN
from bottender.connectors.line_api import LineClient
from bottender.connectors.telegram import UPDATE_KINDS
from bottender.connectors.telegram_api import DEFAULT_ORIGIN as TELEGRAM_ORIGIN
from bottender.connectors.telegram_api import TelegramClient
from bottender.server.config import REQUIRED_CHANNEL_KEYS, Config
from bottender.server.tunnels import find_ngrok_url, ngrok_api_url

T = TypeVar("T")
CHANNEL_NAMES = {"line": "LINE", "telegram": "Telegram"}


class WebhookError(Exception):
    """A webhook command cannot go on; the message tells the user what to do."""


def channel(config: Config, name: str) -> dict[str, Any]:
    """The enabled channel's config, or an error naming ``channels.<name>``."""
    found = config.channels.get(name)
    if found is None:
        token_env = REQUIRED_CHANNEL_KEYS[name]["access_token"]
        raise WebhookError(
            f"channels.{name} is not enabled in {config.path}: set"
            f" channels.{name}.enabled = True and its access_token ({token_env} in .env)"
        )
    return found


def join_url(public_url: str, path: str) -> str:
    return public_url.rstrip("/") + "/" + path.lstrip("/")


def webhook_url(config: Config, name: str, explicit: str | None) -> str:
    """``--webhook`` as given, else the running ngrok tunnel's URL plus the channel's path."""
    if explicit:
        return explicit
    public_url = find_ngrok_url()
    if public_url is None:
        raise WebhookError(
            f"no webhook URL: pass --webhook https://<your host>{channel(config, name)['path']},"
            f" or run `bottender dev` (no ngrok tunnel answers at {ngrok_api_url()})"
        )
    return join_url(public_url, channel(config, name)["path"])


async def _with_http(call: Callable[[aiohttp.ClientSession], Awaitable[T]]) -> T:
    async with aiohttp.ClientSession(json_serialize=lambda obj: orjson.dumps(obj).decode()) as http:
        return await call(http)


def _telegram(config: Config, http: aiohttp.ClientSession) -> TelegramClient:
    settings = channel(config, "telegram")
    return TelegramClient(http, settings["access_token"], settings.get("origin") or TELEGRAM_ORIGIN)


def _line(config: Config, http: aiohttp.ClientSession) -> LineClient:
    settings = channel(config, "line")
    return LineClient(http, settings["access_token"], settings.get("origin") or LINE_ORIGIN)


def _when(timestamp: Any) -> str:
    if not isinstance(timestamp, int | float) or not timestamp:
        return "-"
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


# --- Telegram ---------------------------------------------------------------


async def telegram_set(
    config: Config,
    url: str,
    *,
    secret_token: str | None = None,
    drop_pending_updates: bool = False,
    http: aiohttp.ClientSession | None = None,
) -> list[str]:
    """setWebhook with the channel's secret token and every update kind the runtime handles."""
    configured = channel(config, "telegram").get("secret_token")
    token = secret_token or configured
    lines = []
    if secret_token and configured and secret_token != configured:
        lines.append(
            "warning: --secret-token differs from channels.telegram.secret_token;"
            " the gateway will refuse Telegram's updates (401) until they match"
        )

    async def call(session: aiohttp.ClientSession) -> Any:
        return await _telegram(config, session).set_webhook(
            url,
            secret_token=token,
            allowed_updates=list(UPDATE_KINDS),
            drop_pending_updates=drop_pending_updates,
        )

    await (call(http) if http is not None else _with_http(call))
    lines.append(f"Telegram webhook set: {url}")
    if token:
        lines.append("Secret token: set (Telegram sends it with every update)")
    if drop_pending_updates:
        lines.append("Pending updates dropped")
    return lines


async def telegram_get(config: Config) -> list[str]:
    info = await _with_http(lambda http: _telegram(config, http).get_webhook_info())
    info = info if isinstance(info, dict) else {}
    url = info.get("url") or ""
    if not url:
        return [
            "Telegram webhook: none set (updates wait for getUpdates)",
            f"Pending updates: {info.get('pending_update_count', 0)}",
        ]
    allowed = info.get("allowed_updates")
    lines = [
        f"Telegram webhook: {url}",
        f"Pending updates: {info.get('pending_update_count', 0)}",
    ]
    if info.get("last_error_message"):
        lines.append(
            f"Last error: {info['last_error_message']} (at {_when(info.get('last_error_date'))})"
        )
    else:
        lines.append("Last error: none")
    if info.get("last_synchronization_error_date"):
        lines.append(
            f"Last synchronization error: at {_when(info['last_synchronization_error_date'])}"
        )
    lines.append(
        "Allowed updates: "
        + (
            ", ".join(allowed)
            if allowed
            else "Telegram's default (all but chat_member, message_reaction,"
            " message_reaction_count)"
        )
    )
    if info.get("max_connections"):
        lines.append(f"Max connections: {info['max_connections']}")
    if info.get("ip_address"):
        lines.append(f"IP address: {info['ip_address']}")
    return lines


async def telegram_delete(config: Config, *, drop_pending_updates: bool = False) -> list[str]:
    await _with_http(
        lambda http: _telegram(config, http).delete_webhook(
            drop_pending_updates=drop_pending_updates
        )
    )
    lines = ["Telegram webhook deleted"]
    if drop_pending_updates:
        lines.append("Pending updates dropped")
    return lines


# --- LINE -------------------------------------------------------------------


async def line_set(
    config: Config, url: str, *, http: aiohttp.ClientSession | None = None
) -> list[str]:
    """Set the endpoint; LINE only sends to it once "Use webhook" is on, so say if it is off."""

    async def call(session: aiohttp.ClientSession) -> dict[str, Any] | None:
        client = _line(config, session)
        await client.set_webhook_endpoint(url)
        try:
            info = await client.get_webhook_endpoint()
        except PlatformApiError:
            return None
        return info if isinstance(info, dict) else None

    info = await (call(http) if http is not None else _with_http(call))
    lines = [f"LINE webhook set: {url}"]
    if info is not None and info.get("active") is False:
        lines.append(
            "Note: webhook use is off for this channel; turn on 'Use webhook' in the"
            " LINE Developers console (Messaging API tab) or LINE sends no events"
        )
    return lines


async def line_get(config: Config) -> list[str]:
    info = await _with_http(lambda http: _line(config, http).get_webhook_endpoint())
    info = info if isinstance(info, dict) else {}
    active = info.get("active")
    return [
        f"LINE webhook: {info.get('endpoint') or 'none set'}",
        "Active: "
        + ("yes" if active else "no (turn on 'Use webhook')" if active is False else "-"),
    ]


async def line_test(config: Config, url: str | None = None) -> tuple[bool, list[str]]:
    """Ask LINE to send a test event to the endpoint; ``(success, lines)``."""
    result = await _with_http(lambda http: _line(config, http).test_webhook(url))
    result = result if isinstance(result, dict) else {}
    success = result.get("success") is True
    lines = [
        f"LINE webhook test: {'success' if success else 'FAILED'}",
        f"Status code: {result.get('statusCode', '-')}",
        f"Reason: {result.get('reason', '-')}",
        f"Detail: {result.get('detail', '-')}",
    ]
    if result.get("timestamp"):
        lines.append(f"Timestamp: {result['timestamp']}")
    return success, lines


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
        if "telegram" in urls:
            lines.extend(await telegram_set(config, urls["telegram"], http=http))
        if "line" in urls:
            lines.extend(await line_set(config, urls["line"], http=http))

    if urls:
        await _with_http(register)
    return urls, lines
