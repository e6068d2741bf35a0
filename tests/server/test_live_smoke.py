import aiohttp


async def test_counting_bot_answers_on_telegram(make_gateway, fake_platform):
    live = make_gateway(
        app="tests.bots:counter",
        channels={
            "telegram": {"enabled": True, "access_token": "T", "origin": fake_platform.origin}
        },
    )
    update = {
        "update_id": 1,
        "message": {"message_id": 1, "date": 1, "chat": {"id": 7, "type": "private"}, "text": "hi"},
    }
    async with aiohttp.ClientSession() as http:
        for i in range(2):
            update["update_id"] = i + 1
            async with http.post(live.url + "/webhooks/telegram", json=update) as r:
                assert r.status == 200
    assert fake_platform.texts() == ["Count: 1", "Count: 2"]
    session = live.run(live.gateway.store.read("telegram:7"))
    assert session.state == {"count": 2}
