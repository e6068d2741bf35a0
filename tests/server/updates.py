"""Telegram ``Update`` bodies shaped as the Bot API documents them.

https://core.telegram.org/bots/api#update — every update has an ``update_id``
and exactly one optional field; a ``Message`` always carries ``message_id``,
``date`` and ``chat`` (``id``, ``type``, plus ``first_name`` for a private chat
or ``title`` for a group), and ``from`` (a ``User``: ``id``, ``is_bot``,
``first_name``) for messages sent by users.
"""

from __future__ import annotations

import itertools
from typing import Any

DATE = 1_700_000_000
_message_ids = itertools.count(1)


def user(user_id: int = 7, first_name: str = "Ann") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}


def private_chat(chat_id: int = 7, first_name: str = "Ann") -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": first_name}


def group_chat(chat_id: int = -1001234567890, title: str = "Friends") -> dict[str, Any]:
    return {"id": chat_id, "type": "supergroup", "title": title}


def message(
    text: str,
    *,
    chat: dict[str, Any] | None = None,
    sender: dict[str, Any] | None = None,
    message_id: int | None = None,
    date: int = DATE,
) -> dict[str, Any]:
    """A text ``Message``; in a private chat the sender is the chat's user."""
    chat = chat or private_chat()
    if sender is None:
        sender = user(chat["id"]) if chat["type"] == "private" else user()
    return {
        "message_id": message_id if message_id is not None else next(_message_ids),
        "from": sender,
        "chat": chat,
        "date": date,
        "text": text,
    }


def text_update(update_id: int, text: str, *, chat_id: int = 7, **options: Any) -> dict[str, Any]:
    """An ``Update`` with a text message in the private chat ``chat_id``."""
    chat = options.pop("chat", None) or private_chat(chat_id)
    return {"update_id": update_id, "message": message(text, chat=chat, **options)}


def poll_update(update_id: int, poll_id: str = "5432109876543210") -> dict[str, Any]:
    """An ``Update`` with a ``Poll`` state change: it names no chat and no user."""
    return {
        "update_id": update_id,
        "poll": {
            "id": poll_id,
            "question": "Lunch?",
            "options": [
                {"text": "Pizza", "voter_count": 1},
                {"text": "Sushi", "voter_count": 0},
            ],
            "total_voter_count": 1,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
        },
    }
