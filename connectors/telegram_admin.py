"""Telegram's operator calls: setWebhook, getWebhookInfo, deleteWebhook, getMe."""

from __future__ import annotations

import argparse
from typing import Any, ClassVar

from bottender.connectors.admin import ChannelAdmin, when
from bottender.connectors.telegram_api import DEFAULT_ORIGIN, TelegramClient

#: The allowed_updates Telegram keeps when none are given, in words.
DEFAULT_ALLOWED = (
    "Telegram's default (all but chat_member, message_reaction, message_reaction_count)"
)


class TelegramAdmin(ChannelAdmin):
    actions: ClassVar[dict[str, str]] = {
        "set": "point Telegram at the webhook",
        "get": "show the webhook and its last error",
        "delete": "remove the webhook",
    }

    @property
    def client(self) -> TelegramClient:
        origin = self.settings.get("origin") or DEFAULT_ORIGIN
        return TelegramClient(self.http, self.settings["access_token"], origin)

    @classmethod
    def add_arguments(cls, action: str, parser: argparse.ArgumentParser) -> None:
        if action == "set":
            parser.add_argument(
                "--secret-token",
                metavar="T",
                help="secret Telegram sends with each update (default: the channel's secret_token)",
            )
        if action in ("set", "delete"):
            parser.add_argument(
                "--drop-pending-updates",
                action="store_true",
                help="discard updates waiting for the bot",
            )

    async def run(
        self, action: str, args: argparse.Namespace, url: str | None
    ) -> tuple[bool, list[str]]:
        drop = bool(getattr(args, "drop_pending_updates", False))
        if action == "set":
            assert url is not None
            secret = getattr(args, "secret_token", None)
            return True, await self.set(url, secret_token=secret, drop_pending_updates=drop)
        if action == "get":
            return True, await self.get()
        return True, await self.delete(drop_pending_updates=drop)

    async def register(self, url: str) -> list[str]:
        return await self.set(url)

    async def set(
        self, url: str, *, secret_token: str | None = None, drop_pending_updates: bool = False
    ) -> list[str]:
        """setWebhook with the channel's secret token and every update kind the runtime handles."""
        from bottender.connectors.telegram import UPDATE_KINDS

        configured = self.settings.get("secret_token")
        token = secret_token or configured
        lines = []
        if secret_token and configured and secret_token != configured:
            lines.append(
                f"warning: --secret-token differs from channels.{self.name}.secret_token;"
                " the gateway will refuse Telegram's updates (401) until they match"
            )
        await self.client.set_webhook(
            url,
            secret_token=token,
            allowed_updates=list(UPDATE_KINDS),
            drop_pending_updates=drop_pending_updates,
        )
        lines.append(f"Telegram webhook set: {url}")
        if token:
            lines.append("Secret token: set (Telegram sends it with every update)")
        if drop_pending_updates:
            lines.append("Pending updates dropped")
        return lines

    async def get(self) -> list[str]:
        info: Any = await self.client.get_webhook_info()
        info = info if isinstance(info, dict) else {}
        pending = f"Pending updates: {info.get('pending_update_count', 0)}"
        url = info.get("url") or ""
        if not url:
            return ["Telegram webhook: none set (updates wait for getUpdates)", pending]
        lines = [f"Telegram webhook: {url}", pending]
        if info.get("last_error_message"):
            error_at = when(info.get("last_error_date"))
            lines.append(f"Last error: {info['last_error_message']} (at {error_at})")
        else:
            lines.append("Last error: none")
        if info.get("last_synchronization_error_date"):
            sync_at = when(info["last_synchronization_error_date"])
            lines.append(f"Last synchronization error: at {sync_at}")
        allowed = info.get("allowed_updates")
        lines.append("Allowed updates: " + (", ".join(allowed) if allowed else DEFAULT_ALLOWED))
        if info.get("max_connections"):
            lines.append(f"Max connections: {info['max_connections']}")
        if info.get("ip_address"):
            lines.append(f"IP address: {info['ip_address']}")
        return lines

    async def delete(self, *, drop_pending_updates: bool = False) -> list[str]:
        await self.client.delete_webhook(drop_pending_updates=drop_pending_updates)
        lines = ["Telegram webhook deleted"]
        if drop_pending_updates:
            lines.append("Pending updates dropped")
        return lines

    async def unregister_for_polling(self) -> list[str]:
        """getUpdates is refused (409) while a webhook is set: delete it, and say so."""
        info: Any = await self.client.get_webhook_info()
        url = info.get("url") if isinstance(info, dict) else None
        await self.client.delete_webhook()
        if url:
            return [f"Telegram webhook of channel {self.name!r} deleted ({url}): polling instead"]
        return []
