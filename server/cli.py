"""The ``bottender`` command.

Config mistakes end the command with one line naming the key and exit status
2, never a traceback: the person reading it is a bot developer, not us. A
platform refusing a call, a missing tunnel program or a missing webhook URL
end it the same way with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from bottender.connectors import registry
from bottender.connectors.api import PlatformApiError
from bottender.server.config import Config, ConfigError, load_config
from bottender.server.dev import DevError
from bottender.server.logs import LOG_FORMATS
from bottender.server.tunnels import TUNNELS, TunnelError
from bottender.server.webhooks import WebhookError
from bottender.sessions.base import StoreUnavailable

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 5000


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return port


def _workers(value: str) -> int:
    workers = int(value)
    if workers < 1:
        raise argparse.ArgumentTypeError(f"at least one worker is needed, got {value}")
    return workers


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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    start = commands.add_parser("start", help="serve the bot's webhooks, or chat in the console")
    start.add_argument("--console", action="store_true", help="chat with the bot in the terminal")
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
        "--ingest-only",
        action="store_true",
        help="answer webhooks and fill the durable inbox; leave running the events of"
        ' channels with ack "immediate" to `bottender worker`',
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
    config = _load(args)
    if args.console:
        from bottender.server.console import run_console

        asyncio.run(run_console(config, channel=args.channel))
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
        polling=args.polling,
        ingest_only=args.ingest_only,
    )


def cmd_worker(args: argparse.Namespace) -> int:
    config = _load(args)
    from bottender.server.worker import run_worker

    asyncio.run(run_worker(config))
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    # The reloader's server processes read .env themselves, so that an edited .env
    # counts on reload; keep .env's values out of the environment they inherit.
    pristine = dict(os.environ)
    try:
        config = _load(args)
    finally:
        with_dotenv = dict(os.environ)
        os.environ.clear()
        os.environ.update(pristine)
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    except (WebhookError, TunnelError, DevError, PlatformApiError) as exc:
        print(f"bottender: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
