"""``bottender doctor``: what an operator asks first, checked and printed as one table.

Does the config load; is the store reachable, and how fast; does each platform accept
the channel's token; is the webhook registered where this gateway listens; are updates
piling up or failing (Telegram); is this machine's clock close to the store's (lock
leases are timed against it). Exit status 1 when any row is FAIL; ``warn`` rows are
worth a look but do not fail.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from bottender.connectors.api import PlatformApiError
from bottender.server import webhooks
from bottender.server.config import Config
from bottender.server.stores import build_store

#: Seconds of clock difference with the store beyond which leases cannot be trusted.
MAX_SKEW_SECONDS = 1.0
#: A Telegram delivery error this recent (seconds) fails the check; older ones warn.
RECENT_ERROR_SECONDS = 600.0
#: Updates waiting at Telegram beyond this are worth a warning.
MANY_PENDING = 100
OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(slots=True)
class Row:
    check: str
    status: str
    detail: str


def render(rows: list[Row]) -> list[str]:
    """A plain aligned table: readable in a terminal and in a CI log."""
    width = max(len("CHECK"), *(len(row.check) for row in rows))
    lines = [f"{'CHECK':<{width}}  STATUS  DETAIL"]
    lines += [f"{row.check:<{width}}  {row.status:<6}  {row.detail}" for row in rows]
    return lines


async def run_checks(
    config: Config, *, public_url: str | None = None, clock: Callable[[], float] = time.time
) -> list[Row]:
    rows = [Row("config", OK, str(config.path))]
    rows += await _store_rows(config, clock)
    async with aiohttp.ClientSession(json_serialize=lambda obj: orjson.dumps(obj).decode()) as http:
        for name, channel in config.channels.items():
            check = PLATFORM_CHECKS.get(channel["platform"])
            if check is not None:
                client = webhooks.admin(config, name, http).client  # type: ignore[attr-defined]
                label = _label(config, name)
                rows += await _platform_rows(
                    check, client, label, channel["path"], public_url, clock
                )
    return rows


def _label(config: Config, name: str) -> str:
    """``telegram`` for the channel named after its platform, ``telegram (shop)`` for another."""
    platform = config.channels[name]["platform"]
    return platform if name == platform else f"{platform} ({name})"


async def _store_rows(config: Config, clock: Callable[[], float]) -> list[Row]:
    name = f"store ({config.driver})"
    store = build_store(config)
    try:
        await store.open()
    except Exception as exc:
        return [Row(name, FAIL, f"unreachable: {exc}")]
    try:
        started = time.perf_counter()
        await store.read("bottender:doctor")
        rtt_ms = (time.perf_counter() - started) * 1000
        rows = [Row(name, OK, f"round trip {rtt_ms:.1f} ms")]
        before = clock()
        server = await store.server_time()
        after = clock()
        if server is not None:
            skew = server - (before + after) / 2
            status = OK if abs(skew) <= MAX_SKEW_SECONDS else FAIL
            rows.append(Row("clock skew vs store", status, f"{skew:+.3f} s"))
        return rows
    except Exception as exc:
        return [Row(name, FAIL, f"opened, but a read failed: {exc}")]
    finally:
        await store.close()


async def _call(call: Awaitable[Any]) -> tuple[Any, str | None]:
    """The call's result, or ``None`` and the platform's refusal in words."""
    try:
        return await call, None
    except PlatformApiError as exc:
        return None, str(exc)


def _webhook_row(
    name: str, registered: str, path: str, public_url: str | None, *, fail_if_none: bool = True
) -> Row:
    """Registered vs configured: the full URL with ``--public-url``, else only its path."""
    if not registered:
        return Row(name, FAIL if fail_if_none else WARN, "none registered")
    expected = webhooks.join_url(public_url, path) if public_url else None
    if expected is not None and registered != expected:
        return Row(name, FAIL, f"{registered} (configured: {expected})")
    if expected is None and urlsplit(registered).path != path:
        return Row(name, FAIL, f"{registered} (configured path: {path})")
    return Row(name, OK, registered)


@dataclass(frozen=True, slots=True)
class PlatformCheck:
    """What differs between platforms; the order of the calls and their rows does not."""

    #: ``client -> awaitable``: who the token belongs to (a refusal fails the token row).
    ask_bot: Callable[[Any], Awaitable[Any]]
    #: The token row's detail, from the platform's answer.
    describe_bot: Callable[[dict[str, Any]], str]
    #: ``client -> awaitable``: the webhook as the platform has it.
    ask_webhook: Callable[[Any], Awaitable[Any]]
    #: ``(label, info, path, public_url, clock) -> rows`` from that webhook info.
    webhook_rows: Callable[..., list[Row]]


async def _platform_rows(
    check: PlatformCheck,
    client: Any,
    label: str,
    path: str,
    public_url: str | None,
    clock: Callable[[], float],
) -> list[Row]:
    """The token row, then the webhook's: a refused token says all, its webhook is not asked."""
    bot, refused = await _call(check.ask_bot(client))
    if refused is not None:
        return [Row(f"{label} token", FAIL, refused)]
    rows = [Row(f"{label} token", OK, check.describe_bot(_mapping(bot)))]
    info, refused = await _call(check.ask_webhook(client))
    if refused is not None:
        return [*rows, Row(f"{label} webhook", FAIL, refused)]
    return [*rows, *check.webhook_rows(label, _mapping(info), path, public_url, clock)]


def _mapping(answer: Any) -> dict[str, Any]:
    """A platform's JSON object, or an empty one if it answered something else."""
    return answer if isinstance(answer, dict) else {}


def _telegram_webhook_rows(
    label: str, info: dict[str, Any], path: str, public_url: str | None, clock: Callable[[], float]
) -> list[Row]:
    rows = [_webhook_row(f"{label} webhook", info.get("url") or "", path, public_url)]
    pending = info.get("pending_update_count", 0)
    rows.append(Row(f"{label} pending", WARN if pending > MANY_PENDING else OK, str(pending)))
    message = info.get("last_error_message")
    if not message:
        rows.append(Row(f"{label} last error", OK, "none"))
    else:
        age = clock() - float(info.get("last_error_date") or 0)
        status = FAIL if age <= RECENT_ERROR_SECONDS else WARN
        rows.append(Row(f"{label} last error", status, f"{message} ({age:.0f} s ago)"))
    return rows


def _line_webhook_rows(
    label: str, info: dict[str, Any], path: str, public_url: str | None, clock: Callable[[], float]
) -> list[Row]:
    row = _webhook_row(f"{label} webhook", info.get("endpoint") or "", path, public_url)
    if row.status == OK and info.get("active") is False:
        row = Row(f"{label} webhook", FAIL, f"{row.detail} (not active: turn on 'Use webhook')")
    return [row]


#: Each platform's checks (its token, its webhook), by platform name.
PLATFORM_CHECKS: dict[str, PlatformCheck] = {
    "telegram": PlatformCheck(
        ask_bot=lambda client: client.call("getMe"),
        describe_bot=lambda me: f"@{me.get('username', '?')}",
        ask_webhook=lambda client: client.get_webhook_info(),
        webhook_rows=_telegram_webhook_rows,
    ),
    "line": PlatformCheck(
        ask_bot=lambda client: client.call("GET", "/v2/bot/info"),
        describe_bot=lambda bot: f"{bot.get('displayName', '?')} ({bot.get('basicId', '?')})",
        ask_webhook=lambda client: client.get_webhook_endpoint(),
        webhook_rows=_line_webhook_rows,
    ),
}
