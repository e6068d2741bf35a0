"""The bot's configuration: the Python twin of Bottender's bottender.config.js.

``.env`` in the working directory is loaded before this file runs, so every
secret comes from the environment. See .env.example for each variable.
"""

import os


def minutes_from_env(name: str) -> float | None:
    """Minutes from the environment (unset: None); a typo names the variable."""
    value = os.getenv(name)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of minutes, got {value!r}") from None


app = os.getenv("BOTTENDER_APP", "examples.counter:app")

initial_state = {"count": 0}

session = {
    # memory in development; BOTTENDER_ENV=production picks mongo, as in Bottender's guide.
    "driver": os.getenv(
        "SESSION_DRIVER", "mongo" if os.getenv("BOTTENDER_ENV") == "production" else "memory"
    ),
    "expires_in": minutes_from_env("SESSION_EXPIRES_IN"),
    "stores": {
        "memory": {"max_size": 500},
        "file": {"dirname": ".session"},
        "redis": {"url": os.getenv("REDIS_URL", "redis://127.0.0.1:6379/0")},
        "mongo": {
            "url": os.getenv("MONGO_URL", "mongodb://localhost:27017/bottender"),
            "collection_name": "sessions",
        },
    },
}

channels = {
    "line": {
        "enabled": bool(os.getenv("LINE_ACCESS_TOKEN")),
        "path": "/webhooks/line",
        "access_token": os.getenv("LINE_ACCESS_TOKEN"),
        "channel_secret": os.getenv("LINE_CHANNEL_SECRET"),
        # A stand-in for the platform (a test server, a proxy); unset = the real API.
        "origin": os.getenv("LINE_API_ORIGIN") or "https://api.line.me",
    },
    "telegram": {
        "enabled": bool(os.getenv("TELEGRAM_ACCESS_TOKEN")),
        "path": "/webhooks/telegram",
        "access_token": os.getenv("TELEGRAM_ACCESS_TOKEN"),
        "secret_token": os.getenv("TELEGRAM_SECRET_TOKEN"),
        "origin": os.getenv("TELEGRAM_API_ORIGIN") or "https://api.telegram.org",
    },
    # More bots on the same gateway and store: any other name, with its "platform".
    # Its sessions are "shop:<id>" / "support:<id>", never shared with the channels above.
    "shop": {
        "enabled": bool(os.getenv("SHOP_ACCESS_TOKEN")),
        "platform": "line",
        "path": "/webhooks/shop",
        "access_token": os.getenv("SHOP_ACCESS_TOKEN"),
        "channel_secret": os.getenv("SHOP_CHANNEL_SECRET"),
    },
    "support": {
        "enabled": bool(os.getenv("SUPPORT_ACCESS_TOKEN")),
        "platform": "telegram",
        "path": "/webhooks/support",
        "access_token": os.getenv("SUPPORT_ACCESS_TOKEN"),
    },
}
