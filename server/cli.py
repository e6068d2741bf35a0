"""The ``bottender`` command.

Config mistakes end the command with one line naming the key and exit status
2, never a traceback: the person reading it is a bot developer, not us. A
platform refusing a call, a missing tunnel program or a missing webhook URL
end it the same way with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from bottender.connectors import registry
from bottender.connectors.api import PlatformApiError
from bottender.connectors.console import PLATFORMS
from bottender.server.config import Config, ConfigError, load_config
from bottender.server.logs import LOG_FORMATS
from bottender.server.sessions_cli import add_sessions_command
from bottender.server.startup import StartupError
from bottender.server.tunnels import TUNNELS, TunnelError
from bottender.server.webhooks import WebhookError
from bottender.sessions.base import StoreUnavailable

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 5000


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range (1-65535): {value}")
    return port


def _workers(value: str) -> int:
    try:
        workers = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of workers: {value!r}") from None
    if workers < 1:
        raise argparse.ArgumentTypeError(f"at least one worker is needed, got {value}")
    return workers


def version() -> str:
    """The installed distribution's version (the source tree's, when run uninstalled)."""
    try:
        return importlib.metadata.version("bottender-py")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _env_port(value: str | None) -> int:
    """``PORT`` from the environment (or .env): a bad one is a config error, not a traceback."""
    if value is None:
        return DEFAULT_PORT
    try:
        return _port(value)
    except (ValueError, argparse.ArgumentTypeError):
        raise ConfigError(f"PORT must be a port number (1-65535), got {value!r}") from None


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="config file (default ./bottender_config.py)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bottender", description="Run bots for LINE and Telegram."
    )
    parser.add_argument("--version", action="version", version=f"bottender {version()}")
    # Not required: `bottender` alone prints this help (main does it).
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    start = commands.add_parser("start", help="serve the bot's webhooks, or chat in the console")
    start.add_argument("--console", action="store_true", help="chat with the bot in the terminal")
    start.add_argument(
        "--platform",
        choices=PLATFORMS,
        help="with --console: shape the events as this platform sends them (default console)",
    )
    start.add_argument(
        "--channel",
        metavar="NAME",
        help="with --console: speak as this configured channel (context.channel)",
    )
    start.add_argument(
        "--polling",
        action="store_true",
        help="long-poll Telegram for updates instead of serving webhooks (LINE channels skipped)",
    )
    start.add_argument(
        "--host", default=DEFAULT_HOST, help=f"bind address (default {DEFAULT_HOST})"
    )
    start.add_argument("--port", type=_port, help=f"port (default $PORT, else {DEFAULT_PORT})")
    start.add_argument("--workers", type=_workers, default=1, help="worker processes (default 1)")
    start.add_argument("--app", metavar="MODULE:FUNCTION", help="override the config's app")
    start.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    start.add_argument(
        "--log-format", default="text", choices=LOG_FORMATS, help="key=value text or JSON lines"
    )
    start.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="comma-separated proxy addresses whose X-Forwarded-* headers are trusted"
        " (default $FORWARDED_ALLOW_IPS, else 127.0.0.1; '*' trusts every client)",
    )
    start.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus metrics of every worker on 127.0.0.1:PORT (default: off)",
    )
    start.add_argument(
        "--ingest-only",
        action="store_true",
        help="answer webhooks and fill the durable inbox; leave running the events of"
        ' channels with ack "immediate" to `bottender worker`',
    )
    start.add_argument(
        "--no-check",
        action="store_true",
        help="do not ask the platforms whether they accept the channels' tokens at start-up",
    )
    _add_config_options(start)
    start.set_defaults(handler=cmd_start)

    worker = commands.add_parser("worker", help="run events from the durable inbox, no HTTP")
    worker.add_argument("--app", metavar="MODULE:FUNCTION", help="override the config's app")
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    _add_config_options(worker)
    worker.set_defaults(handler=cmd_worker)

    dev = commands.add_parser(
        "dev", help="serve with reload behind a tunnel, with the webhooks pointed at it"
    )
    dev.add_argument("--port", type=_port, help=f"port (default $PORT, else {DEFAULT_PORT})")
    dev.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    dev.add_argument(
        "--tunnel", choices=sorted(TUNNELS), default="ngrok", help="tunnel program (default ngrok)"
    )
    dev.add_argument(
        "--public-url", metavar="URL", help="use this public URL instead of opening a tunnel"
    )
    dev.add_argument(
        "--polling",
        action="store_true",
        help="long-poll Telegram instead of opening a tunnel (LINE channels skipped)",
    )
    dev.add_argument("--app", metavar="MODULE:FUNCTION", help="override the config's app")
    dev.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    _add_config_options(dev)
    dev.set_defaults(handler=cmd_dev)

    for platform in registry.platforms():
        _add_webhook_commands(commands, platform)

    doctor = commands.add_parser(
        "doctor", help="check config, store, tokens and webhooks; exit 1 if anything is wrong"
    )
    doctor.add_argument(
        "--public-url",
        metavar="URL",
        help="where the platforms should send webhooks (default: check the path only)",
    )
    _add_config_options(doctor)
    doctor.set_defaults(handler=cmd_doctor)

    add_sessions_command(commands, _add_config_options)
    return parser


def _add_webhook_commands(commands: Any, platform: str) -> None:
    """``bottender <platform> webhook <action>``, the actions being the connector's own."""
    connector = registry.connector_class(platform)
    admin_class = connector.admin_class
    if admin_class is None:
        return
    name = connector.display_name
    webhook = (
        commands.add_parser(platform, help=f"{name} commands")
        .add_subparsers(dest=f"{platform}_command", required=True, metavar="COMMAND")
        .add_parser("webhook", help=f"the bot's {name} webhook")
    )
    actions = webhook.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, help_text in admin_class.actions.items():
        sub = actions.add_parser(action, help=help_text)
        if action in admin_class.url_actions:
            sub.add_argument(
                "--webhook",
                metavar="URL",
                help="the webhook URL (default: the running ngrok tunnel's URL"
                " + the channel's path)",
            )
        admin_class.add_arguments(action, sub)
        sub.add_argument(
            "--channel",
            metavar="NAME",
            help=f"which {name} channel of the config (default: channels.{platform},"
            f" or the only {name} channel)",
        )
        _add_config_options(sub)
        sub.set_defaults(handler=cmd_webhook, platform=platform)


def _load(args: argparse.Namespace, *, need_app: bool = True) -> Config:
    return load_config(args.config, app_override=getattr(args, "app", None), need_app=need_app)


def cmd_start(args: argparse.Namespace) -> int:
    if args.platform and not args.console:
        print("bottender: --platform shapes the console's events: add --console", file=sys.stderr)
        return 2
    config = _load(args)
    if args.console:
        from bottender.server.console import run_console

        run_console(config, platform=args.platform or "console", channel=args.channel)
        return 0
    port = args.port if args.port is not None else _env_port(os.getenv("PORT"))
    from bottender.server.serve import serve

    return serve(
        config,
        host=args.host,
        port=port,
        workers=args.workers,
        log_level=args.log_level,
        log_format=args.log_format,
        forwarded_allow=args.forwarded_allow_ips,
        metrics_port=args.metrics_port,
        polling=args.polling,
        ingest_only=args.ingest_only,
        app_override=args.app,
        check_tokens=not args.no_check,
    )


def cmd_worker(args: argparse.Namespace) -> int:
    config = _load(args)
    from bottender.server.worker import run_worker

    asyncio.run(run_worker(config))
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    # The reloader's server processes read .env themselves, so that an edited .env
    # counts on reload: the variables .env added here (none it would not override)
    # are taken out again before the servers inherit this environment.
    before = set(os.environ)
    config = _load(args)
    with_dotenv = dict(os.environ)
    for name in dotenv_values(Path.cwd() / ".env"):
        if name not in before:
            os.environ.pop(name, None)
    port = args.port if args.port is not None else _env_port(with_dotenv.get("PORT"))
    from bottender.server.dev import run_dev

    return run_dev(
        config,
        port=port,
        host=args.host,
        tunnel=args.tunnel,
        public_url=args.public_url,
        log_level=args.log_level,
        dotenv_environ=with_dotenv,
        app_override=args.app,
        polling=args.polling,
    )


def _print(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)


def cmd_webhook(args: argparse.Namespace) -> int:
    from bottender.server import webhooks

    config = _load(args, need_app=False)
    success, lines = webhooks.webhook_command(config, args.platform, args)
    _print(lines)
    return 0 if success else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from bottender.server import doctor

    try:
        config = _load(args, need_app=True)
    except ConfigError as exc:
        _print(doctor.render([doctor.Row("config", doctor.FAIL, str(exc))]))
        return 1
    rows = asyncio.run(doctor.run_checks(config, public_url=args.public_url))
    _print(doctor.render(rows))
    return 1 if any(row.status == doctor.FAIL for row in rows) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    logging.basicConfig(
        level=getattr(logging, str(getattr(args, "log_level", "info")).upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"bottender: config error: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"bottender: session store unavailable: {exc}", file=sys.stderr)
        return 2
    except (WebhookError, TunnelError, StartupError, PlatformApiError) as exc:
        print(f"bottender: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
