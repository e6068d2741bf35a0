"""The metrics route on the webhook port: refused unless the client is allowed.

A webhook port is public by design, so ``/metrics`` there answers only clients in
``server.metrics.allow`` (default: this machine) and, when ``server.metrics.token`` is
set, only with ``Authorization: Bearer <token>`` (compared in constant time). A refusal
is a JSON reason and one access line, like a refused webhook.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bottender.server.logs import access_logger, log_fields
from bottender.server.metrics import NoMetrics


def metrics_route(options: dict[str, Any], metrics: NoMetrics) -> Route:
    """``GET <server.metrics.path>``, serving what :func:`metrics_endpoint` allows."""
    return Route(options["path"], metrics_endpoint(options, metrics), methods=["GET"])


def metrics_endpoint(
    options: dict[str, Any], metrics: NoMetrics
) -> Callable[[Request], Awaitable[Response]]:
    allow = options["allow"]
    token = options["token"]
    expected = f"Bearer {token}".encode() if token else None

    async def scrape(request: Request) -> Response:
        client = request.client.host if request.client else None
        reason = _refusal(client, request.headers.getlist("authorization"), allow, expected)
        if reason is not None:
            status, text = reason
            log_fields(
                access_logger,
                logging.WARNING,
                "metrics",
                {"status": status, "error": text, "client": client},
            )
            return JSONResponse({"ok": False, "error": text}, status_code=status)
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return scrape


def _refusal(
    client: str | None, authorization: list[str], allow: Any, expected: bytes | None
) -> tuple[int, str] | None:
    """``(status, reason)`` when the scrape is refused, else ``None``."""
    try:
        address = ipaddress.ip_address(client or "")
    except ValueError:
        return 403, "client address not allowed"
    if not any(address in network for network in allow):
        return 403, "client address not allowed"
    if expected is None:
        return None
    if not authorization:
        return 401, "missing bearer token"
    if len(authorization) > 1:
        return 401, "more than one Authorization header"
    if not hmac.compare_digest(authorization[0].encode("utf-8", "replace"), expected):
        return 401, "wrong bearer token"
    return None
