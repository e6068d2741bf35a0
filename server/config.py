"""Loading and checking ``bottender_config.py``.

Every mistake a bot developer can make in the config is caught here, at
start-up, and reported as one line naming the key (``session.driver``,
``channels.line.channel_secret``…) rather than as a traceback from deep inside
the first request.
"""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import os
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

from bottender.connectors import registry
from bottender.connectors.base import REQUIRED, json_copy
from bottender.connectors.router import is_action
from bottender.server.limits import LIMIT_KEYS, ServerLimits, server_limits

App = Callable[..., Awaitable[Any]]
#: ``async def on_error(context, error)``.
ErrorHandler = Callable[[Any, Exception], Awaitable[Any]]
#: ``async def middleware(context, call_next)``; ``await call_next()`` runs the rest.
Middleware = Callable[[Any, Callable[[], Awaitable[None]]], Awaitable[Any]]

DRIVERS = ("memory", "file", "redis", "mongo")
DEFAULT_CONFIG_FILE = "bottender_config.py"
DEFAULT_MAX_BODY_SIZE = 1024 * 1024
#: Options of every channel that are the server's, whatever its platform.
SERVER_CHANNEL_KEYS = ("enabled", "platform", "path", "deadline", "ack")
#: When a channel's webhooks are answered: at the deadline (default) or once the inbox has them.
ACKS = ("deadline", "immediate")
#: Inbox entries one process holds at most before answering 503 (server/dispatch.py).
DEFAULT_INBOX_MAX_PENDING = 1000
#: Every key of the config's ``server`` dict: the edge's limits (server/limits.py) and these.
SERVER_KEYS = (*LIMIT_KEYS, "inbox_max_pending", "metrics")
#: The keys of the config's ``session`` dict (each driver's own keys are checked by its store).
SESSION_KEYS = ("driver", "expires_in", "stores")


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
    #: The bot's own routes (OAuth callbacks, payment webhooks), served beside the webhooks.
    routes: list[Any] = field(default_factory=list)
    #: Runs when an action raises, with the same context and the exception.
    error_handler: ErrorHandler | None = None
    #: Wrap the whole action chain, outermost first.
    middleware: tuple[Middleware, ...] = ()
    #: ``server.metrics`` checked (path, token, allow), or ``None``: no metrics route.
    metrics: dict[str, Any] | None = None
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
    return config_from_module(module, config_path, app_override=app_override, need_app=need_app)


def config_from_module(
    module: Any,
    config_path: Path,
    *,
    app_override: str | None = None,
    need_app: bool = True,
) -> Config:
    """Check the names of an imported config (or any object holding them, as BotTester builds)."""
    app_value = app_override or getattr(module, "app", None)
    if need_app:
        app, app_ref = _resolve_app(app_value)
        error_handler, middleware = _resolve_hooks(module)
    else:
        app, app_ref = _no_app, str(app_value)
        error_handler, middleware = None, ()
    initial_state = getattr(module, "initial_state", {})
    if not isinstance(initial_state, dict):
        raise ConfigError(f"initial_state must be a dict, got {type(initial_state).__name__}")
    try:  # the rule Context.set_state applies: what every store can save, unconverted
        json_copy(initial_state, "initial_state")
    except TypeError as exc:
        raise ConfigError(str(exc)) from None

    session = _mapping(getattr(module, "session", {}), "session")
    refuse_unknown(session, "session", SESSION_KEYS)
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
    refuse_unknown(server, "server", SERVER_KEYS)
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
        routes=_routes(getattr(module, "routes", [])),
        error_handler=error_handler,
        middleware=middleware,
        metrics=_metrics(server.get("metrics")),
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
    app, ref = _resolve_ref(value, "app")
    if not is_action(app):
        raise ConfigError(
            f"app: {ref!r} must be an action: async def app(context), a router(...)"
            " or an object with an async __call__"
        )
    return app, ref


def _resolve_ref(value: Any, key: str) -> tuple[Any, str]:
    """``"module:attribute"`` imported (with the project on sys.path), or the object itself."""
    if not isinstance(value, str):
        return value, getattr(value, "__qualname__", repr(value))
    module_name, _, attr = value.partition(":")
    if not module_name or not attr:
        raise ConfigError(f'{key} must be "module:function", got {value!r}')
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"{key}: cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    found = getattr(module, attr, None)
    if found is None:
        raise ConfigError(f"{key}: module {module_name!r} has no {attr!r}")
    return found, value


def _resolve_hooks(module: Any) -> tuple[ErrorHandler | None, tuple[Middleware, ...]]:
    """``error_handler`` and ``middleware`` (API.md "Errors and middleware"), checked."""
    handler = getattr(module, "error_handler", None)
    if handler is not None:
        handler, ref = _resolve_ref(handler, "error_handler")
        if not is_action(handler):
            raise ConfigError(f"error_handler: {ref!r} must be async def on_error(context, error)")
    value = getattr(module, "middleware", None) or []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(
            f'middleware must be a list (for example ["bot:timing"]), got {type(value).__name__}'
        )
    middleware = []
    for index, item in enumerate(value):
        found, ref = _resolve_ref(item, f"middleware[{index}]")
        if not is_action(found):
            raise ConfigError(
                f"middleware[{index}]: {ref!r} must be async def middleware(context, call_next)"
            )
        middleware.append(found)
    return handler, tuple(middleware)


async def _no_app(context: Any) -> None:
    """Stands in where a command needs the config but never runs the bot."""


def refuse_unknown(mapping: dict[Any, Any], key: str, known: Iterable[str]) -> None:
    """A key the code does not read is a typo (``"limts"``), never silently ignored.

    The one way every section reports it: ``server.limts: unknown option (choose from …)``.
    """
    known = tuple(known)
    unknown = [name for name in mapping if name not in known]
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}: unknown option (choose from {', '.join(known)})")


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
        refuse_unknown(channel, f"channels.{name}", (*SERVER_CHANNEL_KEYS, *connector.options))
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


def _routes(value: Any) -> list[Any]:
    """``routes = [Route(...), Mount(...)]``: Starlette routes the gateway serves too."""
    from starlette.routing import BaseRoute

    if not isinstance(value, list | tuple):
        raise ConfigError(f"routes must be a list of Starlette routes, got {type(value).__name__}")
    for index, route in enumerate(value):
        if not isinstance(route, BaseRoute):
            raise ConfigError(
                f"routes[{index}] must be a Starlette Route or Mount, got {type(route).__name__}"
            )
    return list(value)


#: Who may scrape when ``server.metrics.allow`` is not given: this machine only.
DEFAULT_METRICS_ALLOW = ("127.0.0.1", "::1")
METRICS_KEYS = ("path", "token", "allow")


def _metrics(value: Any) -> dict[str, Any] | None:
    """``server.metrics``: off when absent; on, a path, an optional token, client IPs allowed."""
    if value is None or value is False:
        return None
    metrics = dict(_mapping({} if value is True else value, "server.metrics"))
    refuse_unknown(metrics, "server.metrics", METRICS_KEYS)
    if importlib.util.find_spec("prometheus_client") is None:
        raise ConfigError(
            "server.metrics needs prometheus-client: pip install 'bottender-py[metrics]'"
        )
    path = metrics.setdefault("path", "/metrics")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigError(f"server.metrics.path must start with '/', got {path!r}")
    token = metrics.setdefault("token", None)
    if token is not None and (not isinstance(token, str) or not token):
        raise ConfigError("server.metrics.token must be a non-empty string or None")
    allow = metrics.setdefault("allow", list(DEFAULT_METRICS_ALLOW))
    if isinstance(allow, str) or not isinstance(allow, list | tuple):
        raise ConfigError(f"server.metrics.allow must be a list of IP addresses, got {allow!r}")
    networks = []
    for entry in allow:
        try:
            networks.append(ipaddress.ip_network(str(entry), strict=False))
        except ValueError:
            raise ConfigError(
                f"server.metrics.allow: {entry!r} is not an IP address or network"
            ) from None
    metrics["allow"] = tuple(networks)
    return metrics
