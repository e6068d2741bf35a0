"""Loading and checking ``bottender_config.py``.

Every mistake a bot developer can make in the config is caught here, at
start-up, and reported as one line naming the key (``session.driver``,
``channels.line.channel_secret``…) rather than as a traceback from deep inside
the first request.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

from bottender.connectors import registry
from bottender.connectors.base import REQUIRED, json_copy
from bottender.server.limits import ServerLimits, server_limits

App = Callable[[Any], Awaitable[None]]

DRIVERS = ("memory", "file", "redis", "mongo")
DEFAULT_CONFIG_FILE = "bottender_config.py"
DEFAULT_MAX_BODY_SIZE = 1024 * 1024
#: Options of every channel that are the server's, whatever its platform.
SERVER_CHANNEL_KEYS = ("enabled", "platform", "path", "deadline", "ack")
#: When a channel's webhooks are answered: at the deadline (default) or once the inbox has them.
ACKS = ("deadline", "immediate")
#: Inbox entries one process holds at most before answering 503 (server/dispatch.py).
DEFAULT_INBOX_MAX_PENDING = 1000


class ConfigError(Exception):
    """A config key is missing or wrong; the message names the key."""


@dataclass(slots=True)
class Config:
    path: Path
    app: App
    app_ref: str
    initial_state: dict[str, Any]
    driver: str
    expires_in: float | None
    store_options: dict[str, Any]
    #: Enabled channels only, each with its defaults filled in.
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    inbox_max_pending: int = DEFAULT_INBOX_MAX_PENDING
    #: The HTTP edge's limits (``server.*`` keys; server/limits.py).
    limits: ServerLimits = field(default_factory=ServerLimits)


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    app_override: str | None = None,
    need_app: bool = True,
) -> Config:
    """Read ``.env``, import the config file and check every key."""
    config_path = Path(path or DEFAULT_CONFIG_FILE).resolve()
    load_dotenv(Path.cwd() / ".env", override=False)
    if not config_path.is_file():
        raise ConfigError(f"config file not found: {config_path}")
    # Like Bottender, the bot's own modules are imported relative to its project.
    for directory in (str(Path.cwd()), str(config_path.parent)):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    module = _import_config(config_path)

    app_value = app_override or getattr(module, "app", None)
    if need_app:
        app, app_ref = _resolve_app(app_value)
    else:
        app, app_ref = _no_app, str(app_value)
    initial_state = getattr(module, "initial_state", {})
    if not isinstance(initial_state, dict):
        raise ConfigError(f"initial_state must be a dict, got {type(initial_state).__name__}")
    try:  # the rule Context.set_state applies: what every store can save, unconverted
        json_copy(initial_state, "initial_state")
    except TypeError as exc:
        raise ConfigError(str(exc)) from None

    session = _mapping(getattr(module, "session", {}), "session")
    driver = session.get("driver", "memory")
    if driver not in DRIVERS:
        raise ConfigError(f"session.driver: unknown driver {driver!r} (choose one of {DRIVERS})")
    expires_in = session.get("expires_in")
    if expires_in is not None and (
        isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0
    ):
        raise ConfigError(
            f"session.expires_in must be a positive number of minutes or None, got {expires_in!r}"
        )
    stores = _mapping(session.get("stores", {}), "session.stores")
    store_options = _mapping(stores.get(driver, {}), f"session.stores.{driver}")

    server = _mapping(getattr(module, "server", {}), "server")
    max_body_size = server.get("max_body_size", DEFAULT_MAX_BODY_SIZE)
    if isinstance(max_body_size, bool) or not isinstance(max_body_size, int) or max_body_size < 1:
        raise ConfigError(f"server.max_body_size must be a positive integer, got {max_body_size!r}")
    max_pending = server.get("inbox_max_pending", DEFAULT_INBOX_MAX_PENDING)
    if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
        raise ConfigError(
            f"server.inbox_max_pending must be a positive integer, got {max_pending!r}"
        )
    try:
        limits = server_limits(server)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    return Config(
        path=config_path,
        app=app,
        app_ref=app_ref,
        initial_state=initial_state,
        driver=driver,
        expires_in=expires_in,
        store_options=dict(store_options),
        channels=_channels(getattr(module, "channels", {})),
        max_body_size=max_body_size,
        inbox_max_pending=max_pending,
        limits=limits,
    )


def _import_config(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("bottender_config", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        raise ConfigError(f"{path} raised {type(exc).__name__}: {exc}") from None
    return module


def _resolve_app(value: Any) -> tuple[App, str]:
    if value is None:
        raise ConfigError('app is not set (for example app = "examples.counter:app")')
    if isinstance(value, str):
        module_name, _, attr = value.partition(":")
        if not module_name or not attr:
            raise ConfigError(f'app must be "module:function", got {value!r}')
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise ConfigError(
                f"app: cannot import {module_name!r}: {type(exc).__name__}: {exc}"
            ) from None
        app = getattr(module, attr, None)
        if app is None:
            raise ConfigError(f"app: module {module_name!r} has no {attr!r}")
        ref = value
    else:
        app, ref = value, getattr(value, "__qualname__", repr(value))
    if not inspect.iscoroutinefunction(app):
        raise ConfigError(f"app: {ref!r} must be an async function: async def app(context)")
    return app, ref


async def _no_app(context: Any) -> None:
    """Stands in where a command needs the config but never runs the bot."""


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a dict, got {type(value).__name__}")
    return value


def _channels(value: Any) -> dict[str, dict[str, Any]]:
    """Every enabled channel, each with its ``platform`` and defaults filled in.

    Every channel's keys are checked, enabled or not, so a typo is caught
    before the day it is switched on.
    """
    channels = _mapping(value, "channels")
    enabled: dict[str, dict[str, Any]] = {}
    for name, raw in channels.items():
        channel = dict(_mapping(raw, f"channels.{name}"))
        platform = channel.setdefault("platform", name)
        try:
            connector = registry.connector_class(platform)
        except (KeyError, TypeError):
            raise ConfigError(
                f"channels.{name}: unknown platform {platform!r}: name the channel after a"
                f' platform or give it "platform": one of {registry.platforms()}'
            ) from None
        known = (*SERVER_CHANNEL_KEYS, *connector.options)
        unknown = [key for key in channel if key not in known]
        if unknown:
            raise ConfigError(
                f"channels.{name}.{unknown[0]}: unknown option (choose from {', '.join(known)})"
            )
        if channel.get("enabled", False):
            enabled[name] = _fill_channel(name, channel, connector)
    _check_unique(enabled)
    paths = [channel["path"] for channel in enabled.values()]
    if len(set(paths)) != len(paths):
        shared = next(path for path in paths if paths.count(path) > 1)
        raise ConfigError(f"channels: two enabled channels share the path {shared!r}")
    return enabled


def _fill_channel(name: str, channel: dict[str, Any], connector: Any) -> dict[str, Any]:
    for key, default in connector.options.items():
        if default is REQUIRED:
            if not channel.get(key):
                raise ConfigError(
                    f"channels.{name}.{key} is required when channels.{name}.enabled is true"
                    f" (set {_env_name(name, key, connector)} in .env)"
                )
        elif channel.get(key) is None:
            channel[key] = default
    path = channel.setdefault("path", f"/webhooks/{name}")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigError(f"channels.{name}.path must start with '/', got {path!r}")
    deadline = channel.setdefault("deadline", connector.default_deadline)
    if isinstance(deadline, bool) or not isinstance(deadline, int | float) or deadline <= 0:
        raise ConfigError(
            f"channels.{name}.deadline must be a positive number of seconds, got {deadline!r}"
        )
    ack = channel.setdefault("ack", ACKS[0])
    if ack not in ACKS:
        raise ConfigError(f"channels.{name}.ack must be one of {ACKS}, got {ack!r}")
    return channel


def _check_unique(enabled: dict[str, dict[str, Any]]) -> None:
    """Two channels with one bot's token would steal each other's webhook (or poll)."""
    seen: dict[tuple[str, str, Any], str] = {}
    for name, channel in enabled.items():
        connector = registry.connector_class(channel["platform"])
        for key in connector.unique_options:
            marker = (channel["platform"], key, channel.get(key))
            if channel.get(key) is None:
                continue
            if marker in seen:
                raise ConfigError(
                    f"channels.{name}.{key} is the same as channels.{seen[marker]}.{key}:"
                    " two channels cannot be one bot"
                )
            seen[marker] = name


def _env_name(name: str, key: str, connector: Any) -> str:
    """The variable .env.example suggests: LINE_ACCESS_TOKEN, or SHOP_ACCESS_TOKEN for 'shop'."""
    if name == connector.platform and key in connector.env_names:
        return connector.env_names[key]
    return f"{name.upper()}_{key.upper()}"
