"""README's "Testing your bot" chapter is run as written: its tests pass, its script runs."""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def chapter_code(title: str) -> list[str]:
    """The ```python blocks of one ``## title`` chapter of the README."""
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    chapter = text[start : end if end != -1 else None]
    return re.findall(r"```python\n(.*?)```", chapter, flags=re.S)


def test_the_chapter_has_a_test_module_and_a_script():
    blocks = chapter_code("Testing your bot")
    assert len(blocks) == 2
    assert "async def test_counter" in blocks[0]
    assert "asyncio.run(main())" in blocks[1]


def test_the_tests_in_the_readme_pass():
    namespace: dict = {"__name__": "readme_tests"}
    exec(compile(chapter_code("Testing your bot")[0], str(README), "exec"), namespace)
    tests = {name: f for name, f in namespace.items() if name.startswith("test_")}
    assert len(tests) == 2
    for test in tests.values():
        assert inspect.iscoroutinefunction(test)
        asyncio.run(test())


def test_the_script_in_the_readme_runs_without_pytest():
    namespace: dict = {"__name__": "__main__"}
    exec(compile(chapter_code("Testing your bot")[1], str(README), "exec"), namespace)


def test_a_wrong_expectation_in_the_readme_tests_would_fail():
    """The README's tests assert something: with another count they fail."""
    code = chapter_code("Testing your bot")[0].replace('"Count: 2"]', '"Count: 3"]')
    namespace: dict = {"__name__": "readme_tests"}
    exec(compile(code, str(README), "exec"), namespace)
    try:
        asyncio.run(namespace["test_counter"]())
    except AssertionError:
        return
    raise AssertionError("the README's test passed with a wrong expectation")


CHANNELS = """
app = "examples.counter:app"
initial_state = {{"count": 0}}
channels = {{
    "line": {{"enabled": True, "access_token": "T", "channel_secret": "S", "origin": "{origin}"}},
    "telegram": {{"enabled": True, "access_token": "1:T", "origin": "{origin}"}},
}}
"""


def test_the_outside_a_webhook_example_runs(tmp_path, monkeypatch, fake_platform):
    (block,) = chapter_code("Outside a webhook")
    (tmp_path / "bottender_config.py").write_text(CHANNELS.format(origin=fake_platform.origin))
    monkeypatch.chdir(tmp_path)
    code = "async def main():\n" + "".join(f"    {line}\n" for line in block.splitlines())
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    asyncio.run(namespace["main"]())
    (push,) = fake_platform.calls_to("/v2/bot/message/push")
    assert push.json == {"to": "U1234", "messages": [{"type": "text", "text": "Payment received"}]}
    (send,) = fake_platform.calls_to("/sendMessage")
    assert send.json == {"chat_id": 42, "text": "no session needed"}


def test_the_mounting_example_serves_webhooks_and_the_configs_route(
    tmp_path, monkeypatch, fake_platform
):
    from tests.server.conftest import http
    from tests.server.test_mount import line_body, post_line, serve

    mount, config = chapter_code("Mounting the gateway in your own app")
    config += CHANNELS.format(origin=fake_platform.origin).replace('"S"', '"line-secret"')
    (tmp_path / "bottender_config.py").write_text(config)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(mount, str(README), "exec"), namespace)
    with serve(namespace["app"]) as url:
        assert post_line(url + "/bot/webhooks/line", line_body("hi")) == 200
        assert http(url + "/bot/payments", {"session": "line:U1"}).json() == {"ok": True}
    assert fake_platform.texts("/reply") == ["Count: 1"]
    assert fake_platform.texts("/push") == ["Payment received"]
