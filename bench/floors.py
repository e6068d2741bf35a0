"""The two floors the gateway is measured against, served exactly as the gateway is.

* floor 1: a bare Starlette endpoint that parses the JSON body and answers 200.
* floor 2: the same, plus one outgoing POST to the (fake) platform API per request
  through one process-wide aiohttp ClientSession, configured like the gateway's.

Both serve ``/webhooks/telegram`` and ``/webhooks/line`` with the same uvicorn
call as ``bottender start`` (server/serve.py): factory app, uvloop, the h11 edge
protocol with the default limits (server/edge.py), one worker.

    python -m bench.floors --floor 2 --port 18001 --origin http://127.0.0.1:18080
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator

import aiohttp
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bottender.server.edge import uvicorn_options
from bottender.server.limits import ServerLimits

OK = b'{"ok":true}'
FLOOR_ENV = "BENCH_FLOOR"
ORIGIN_ENV = "BENCH_FAKE_ORIGIN"


def create() -> Starlette:
    floor = int(os.environ.get(FLOOR_ENV, "1"))
    origin = os.environ.get(ORIGIN_ENV, "http://127.0.0.1:18080").rstrip("/")
    http: dict[str, aiohttp.ClientSession] = {}
    telegram_url = f"{origin}/botTOKEN/sendMessage"
    line_url = f"{origin}/v2/bot/message/reply"
    headers = {"Content-Type": "application/json"}

    async def telegram(request: Request) -> Response:
        update = orjson.loads(await request.body())
        if floor == 2:
            chat = update["message"]["chat"]["id"]
            data = orjson.dumps({"chat_id": chat, "text": "Count: 1"})
            async with http["client"].post(telegram_url, data=data, headers=headers) as resp:
                orjson.loads(await resp.read())
        return Response(OK, media_type="application/json")

    async def line(request: Request) -> Response:
        body = orjson.loads(await request.body())
        if floor == 2:
            token = body["events"][0]["replyToken"]
            data = orjson.dumps(
                {"replyToken": token, "messages": [{"type": "text", "text": "Count: 1"}]}
            )
            async with http["client"].post(line_url, data=data, headers=headers) as resp:
                orjson.loads(await resp.read())
        return Response(OK, media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        http["client"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=ServerLimits().max_api_connections, limit_per_host=0
            )
        )
        try:
            yield
        finally:
            await http["client"].close()

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/webhooks/telegram", telegram, methods=["POST"]),
            Route("/webhooks/line", line, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--floor", type=int, choices=(1, 2), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--origin", default="http://127.0.0.1:18080")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    os.environ[FLOOR_ENV] = str(args.floor)
    os.environ[ORIGIN_ENV] = args.origin
    # The same call as server/serve.py makes for `bottender start`.
    uvicorn.run(
        "bench.floors:create",
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,
        log_level=args.log_level,
        timeout_graceful_shutdown=30,
        proxy_headers=True,
        **uvicorn_options(ServerLimits()),
    )


if __name__ == "__main__":
    main()
