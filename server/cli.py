"""The ``bottender`` command.

Config mistakes end the command with one line naming the key and exit status
2, never a traceback: the person reading it is a bot developer, not us.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence

from server.config import Config, ConfigError, load_config
from sessions.base import StoreUnavailable

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 5000


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return port


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
        "--host", default=DEFAULT_HOST, help=f"bind address (default {DEFAULT_HOST})"
    )
    start.add_argument("--port", type=_port, help=f"port (default $PORT, else {DEFAULT_PORT})")
    start.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    start.add_argument("--app", metavar="MODULE:FUNCTION", help="override the config's app")
    start.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    _add_config_options(start)
    start.set_defaults(handler=cmd_start)
    return parser


def _load(args: argparse.Namespace, *, need_app: bool = True) -> Config:
    return load_config(args.config, app_override=getattr(args, "app", None), need_app=need_app)


def cmd_start(args: argparse.Namespace) -> int:
    config = _load(args)
    if args.console:
        from server.console import run_console

        asyncio.run(run_console(config))
        return 0
    port = args.port if args.port is not None else int(os.getenv("PORT", DEFAULT_PORT))
    from server.serve import serve

    return serve(config, host=args.host, port=port, workers=args.workers, log_level=args.log_level)


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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
