"""The webhook bodies the bench sends, shared by wrk's files and the Python generator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from pathlib import Path

import orjson

LINE_USERS = 1000


def telegram_update(update_id: int, chat: int) -> bytes:
    """The same shape as bench/wrk/telegram.lua's format string."""
    return (
        b'{"update_id":%d,"message":{"message_id":%d,"date":1700000000,'
        b'"chat":{"id":%d,"type":"private","first_name":"Bench"},'
        b'"from":{"id":%d,"is_bot":false,"first_name":"Bench"},"text":"hi"}}'
        % (update_id, update_id % 1_000_000_000, chat, chat)
    )


def line_signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def line_body(nonce: str, index: int, user: int) -> bytes:
    event = {
        "type": "message",
        "mode": "active",
        "timestamp": 1700000000000 + index,
        "source": {"type": "user", "userId": f"U{user:032x}"},
        "webhookEventId": f"01BENCH{nonce}{index:010d}",
        "deliveryContext": {"isRedelivery": False},
        "replyToken": f"{nonce}{index:010d}".ljust(32, "0"),
        "message": {"id": str(index), "type": "text", "quoteToken": "q", "text": "hi"},
    }
    return orjson.dumps({"destination": "Ubench", "events": [event]})


def write_line_bodies(
    path: Path, *, secret: str, count: int, nonce: str, users: int = LINE_USERS
) -> Path:
    """``count`` pre-signed bodies, one ``<signature>\\t<body>`` a line, users spread at random.

    Every body has its own webhookEventId and replyToken (``nonce`` keeps them
    unique across runs against one server), so none is taken for a redelivery.
    """
    rng = random.Random(nonce)
    lines = []
    for index in range(count):
        body = line_body(nonce, index, rng.randint(1, users))
        lines.append(line_signature(secret, body).encode() + b"\t" + body)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path
