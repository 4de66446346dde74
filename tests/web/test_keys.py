"""Keyed mode in real Chromium: the page asks for the API key, sends it only to
POST /api/v1/tokens (in the Authorization header), goes on with the token, and keeps the key
nowhere: not in a URL, a WebSocket request, localStorage or sessionStorage. When the token
expires mid-session the page asks for the key again instead of failing."""

from __future__ import annotations

import re

import pytest

from tests.conftest import FAST_ENV
from tests.support import ServerProcess
from tests.web.conftest import Page

KEY = "sk-console-permanent-key-1234"
# The browser reports every non-2xx answer as a console error; these are the expected ones here.
EXPECTED_HTTP = re.compile(r"Failed to load resource: the server responded with a status of (401|404|405)")


@pytest.fixture(scope="module")
def keyed_server():
    srv = ServerProcess(env=FAST_ENV, config={"server": {"api_keys": [KEY]}}).start()
    yield srv
    srv.stop()


def test_key_is_asked_for_and_never_kept(browser, keyed_server):
    p = Page(browser, keyed_server.http, viewport={"width": 1200, "height": 860})
    seen: list[tuple[str, str, dict]] = []
    p.page.on("request", lambda r: seen.append(("http", r.url, r.headers)))
    p.page.on("websocket", lambda ws: seen.append(("ws", ws.url, {})))
    try:
        page = p.page
        page.goto(keyed_server.http + "/")
        page.wait_for_selector("#key-dialog[open]")
        page.fill("#key-input", "sk-wrong")
        page.click("#key-form button")
        page.wait_for_function("document.querySelector('#key-error').textContent.length > 0")
        wrong = page.text_content("#key-error")
        page.fill("#key-input", KEY)
        page.click("#key-form button")
        assert "not accepted" in wrong, wrong
        page.wait_for_function("document.querySelector('#live-model').options.length > 0")
        page.click("#tab-vocab")
        page.wait_for_selector("#vocab-list li")
        p.shot("keys-dialog")
        assert page.input_value("#key-input") == ""
        stored = page.evaluate("JSON.stringify([{...localStorage}, {...sessionStorage}])")
        assert KEY not in stored, stored
        for kind, url, headers in seen:
            assert KEY not in url, url
            if kind == "ws" or "/api/v1/tokens" not in url:
                assert KEY not in " ".join(headers.values()), (url, headers)
        assert any("/api/v1/tokens" in url and headers.get("authorization") == f"Bearer {KEY}"
                   for _, url, headers in seen)
        unexpected = [e for e in p.errors if not EXPECTED_HTTP.search(e)]
        assert not unexpected, unexpected
    finally:
        p.close()


def test_expired_token_asks_for_the_key_again(browser, keyed_server):
    p = Page(browser, keyed_server.http, viewport={"width": 1200, "height": 860})
    try:
        page = p.page
        page.clock.install()  # the page's clock, so the token's 30 minutes can pass at once
        page.goto(keyed_server.http + "/")
        page.wait_for_selector("#key-dialog[open]")
        page.fill("#key-input", KEY)
        page.click("#key-form button")
        page.wait_for_function("document.querySelector('#live-model').options.length > 0")
        first = page.evaluate("JSON.parse(sessionStorage.getItem('voxscope.token')).token")
        page.clock.fast_forward("31:00")
        page.click("#tab-files")
        page.click("#file-refresh")
        page.wait_for_selector("#key-dialog[open]")
        assert "expired" in page.text_content("#key-error")
        page.fill("#key-input", KEY)
        page.click("#key-form button")
        page.wait_for_function("!document.querySelector('#key-dialog').open")
        second = page.evaluate("JSON.parse(sessionStorage.getItem('voxscope.token')).token")
        assert second.startswith("st-") and second != first
        assert KEY not in page.evaluate("JSON.stringify([{...localStorage}, {...sessionStorage}])")
        unexpected = [e for e in p.errors if not EXPECTED_HTTP.search(e)]
        assert not unexpected, unexpected
    finally:
        p.close()
