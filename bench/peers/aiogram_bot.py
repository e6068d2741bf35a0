"""aiogram 3 peer: the counting bot on aiogram's own webhook handler.

aiohttp web app + SimpleRequestHandler, MemoryStorage, the count kept in the
FSM context, the Bot API pointed at the bench's fake platform through
``TelegramAPIServer.from_base``. Run with the bench's aiogram venv:

    bench/.work/aiogram-venv/bin/python bench/peers/aiogram_bot.py --port 18003 \
        --origin http://127.0.0.1:18080

Settings chosen to match the gateway's semantics (see bench/README.md):
``handle_in_background=False`` answers the webhook after the handler finished
(the gateway answers once the session is written), ``SimpleEventIsolation``
serialises the updates of one chat (the gateway's per-session lock), uvloop as
uvicorn uses, no access log.
"""

from __future__ import annotations

import argparse
import asyncio

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.types import Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

router = Router()


@router.message()
async def count(message: Message, state: FSMContext) -> None:
    data = await state.get_data()
    n = data.get("count", 0) + 1
    await state.update_data(count=n)
    await message.answer(f"Count: {n}")


def build(origin: str, token: str) -> web.Application:
    session = AiohttpSession(api=TelegramAPIServer.from_base(origin, is_local=True), limit=1000)
    bot = Bot(token=token, session=session)
    dispatcher = Dispatcher(storage=MemoryStorage(), events_isolation=SimpleEventIsolation())
    dispatcher.include_router(router)
    app = web.Application()
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot, handle_in_background=False).register(
        app, path="/webhooks/telegram"
    )

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", healthz)
    setup_application(app, dispatcher, bot=bot)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--origin", required=True)
    parser.add_argument("--token", default="123456:BENCH")
    args = parser.parse_args()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover
        pass
    web.run_app(
        build(args.origin, args.token),
        host=args.host,
        port=args.port,
        access_log=None,
        print=lambda *a: print(*a, flush=True),
    )


if __name__ == "__main__":
    main()
