"""A café menu bot for LINE and Telegram: one router, each platform's own buttons.

Run it with ``bottender start --config examples/menu_config.py`` (or ``--console``).

- "menu" (or "hi"): LINE gets a buttons template and quick replies; Telegram an
  inline keyboard.
- A tap orders an item: LINE postback / Telegram callback query, both ``payload``
  routes. On Telegram the tap is answered and the menu message itself is edited
  to show the order.
- "picture": a picture of the day's cakes, on either platform.
- A picture sent to the bot is thanked for; "/start ref42" greets on Telegram,
  following the LINE account does on LINE.
- "boom" raises, to show the config's ``error_handler`` (``on_error`` below).
"""

from __future__ import annotations

import re
from typing import Any

from bottender import Context, line, payload, platform, route, router, telegram, text

ITEMS = {"1": "Coffee", "2": "Tea", "3": "Cake"}
PICTURE_URL = "https://example.com/static/cakes.jpg"
PICTURE_PREVIEW_URL = "https://example.com/static/cakes-preview.jpg"


def orders_text(orders: list[str]) -> str:
    return f"Your order: {', '.join(orders)}." if orders else "Nothing ordered yet."


def telegram_keyboard() -> dict[str, Any]:
    """One row of items, one row to start over (Bot API ``InlineKeyboardMarkup``)."""
    items = [{"text": name, "callback_data": f"ORDER:{key}"} for key, name in ITEMS.items()]
    return {"inline_keyboard": [items, [{"text": "Start over", "callback_data": "CLEAR"}]]}


def line_quick_replies() -> list[dict[str, Any]]:
    """Quick reply buttons under the message: a message action and a postback action."""
    return [
        {"type": "message", "label": "Picture", "text": "picture"},
        {"type": "postback", "label": "Start over", "data": "CLEAR", "displayText": "Start over"},
    ]


async def show_menu(context: Context) -> None:
    orders = context.state.get("orders", [])
    if context.platform == "line":
        actions = [
            {"type": "postback", "label": name, "data": f"ORDER:{key}", "displayText": name}
            for key, name in ITEMS.items()
        ]
        await context.send_buttons_template(
            "Menu: coffee, tea or cake",
            title="Menu",
            text="What would you like?",
            thumbnail_url=PICTURE_URL,
            actions=actions,
        )
        await context.send_text(orders_text(orders), quick_reply=line_quick_replies())
    elif context.platform == "telegram":
        await context.send_text(
            f"What would you like? {orders_text(orders)}", reply_markup=telegram_keyboard()
        )
    else:  # the console: no buttons, the payloads are typed (/payload ORDER:1)
        choices = ", ".join(f"ORDER:{key} {name}" for key, name in ITEMS.items())
        await context.send_text(f"Menu: {choices}. {orders_text(orders)}")


async def order(context: Context, match: re.Match[str]) -> None:
    item = ITEMS[match.group(1)]
    orders = [*context.state.get("orders", []), item]
    context.set_state({"orders": orders})
    if context.platform == "telegram":
        await context.answer_callback_query(f"{item} added")
        await context.edit_message_text(
            f"What else? {orders_text(orders)}", reply_markup=telegram_keyboard()
        )
    else:
        quick_reply = {"quick_reply": line_quick_replies()} if context.platform == "line" else {}
        await context.send_text(f"{item} added. {orders_text(orders)}", **quick_reply)


async def clear(context: Context) -> None:
    context.set_state({"orders": []})
    if context.platform == "telegram":
        await context.answer_callback_query("Cleared")
        await context.edit_message_text(
            f"What would you like? {orders_text([])}", reply_markup=telegram_keyboard()
        )
    else:
        await context.send_text(orders_text([]))


async def picture(context: Context) -> None:
    """``send_image`` is cross-platform: a LINE image message, a Telegram ``sendPhoto``."""
    if context.platform == "console":
        await context.send_text(f"(picture) {PICTURE_URL}")
        return
    await context.send_image(PICTURE_URL, preview_url=PICTURE_PREVIEW_URL)


async def thanks_for_the_picture(context: Context) -> None:
    await context.send_text("What a nice picture! Say 'menu' to order.")


async def start(context: Context, args: str) -> Any:
    """``/start`` or a deep link ``/start ref42``; then the menu (an action returning an action)."""
    await context.send_text(f"Welcome{' from ' + args if args else ''}!")
    return show_menu


async def welcome(context: Context) -> Any:
    await context.send_text("Thanks for adding the café!")
    return show_menu


async def boom(context: Context) -> None:
    raise RuntimeError("the espresso machine broke")


async def fallback(context: Context) -> None:
    await context.send_text("Say 'menu' to see the menu.")


async def line_fallback(context: Context) -> None:
    """On LINE the hint comes with quick replies, so there is nothing to type."""
    quick_reply = [{"type": "message", "label": "Menu", "text": "menu"}, *line_quick_replies()]
    await context.send_text("Tap Menu to order.", quick_reply=quick_reply)


async def on_error(context: Context, error: Exception) -> None:
    """The config's ``error_handler``: what it sends is sent; the state is left as it was."""
    await context.send_text("Sorry, something went wrong. Please try again.")


app = router(
    telegram.command("start", start),
    line.follow(welcome),
    text(re.compile(r"^(menu|hi|hello)$", re.IGNORECASE), show_menu),
    text("picture", picture),
    text("boom", boom),
    payload(re.compile(r"^ORDER:(\d)$"), order),
    payload("CLEAR", clear),
    route(lambda context: context.event.is_image, thanks_for_the_picture),
    platform("line", line_fallback),
    route("*", fallback),
)
