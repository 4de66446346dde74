"""Keyed mode in real Chromium: the page asks for the API key, sends it only to
POST /api/v1/tokens (in the Authorization header), and keeps it nowhere: not in a URL, a
WebSocket request, localStorage or sessionStorage. Where the server issues no tokens the page
says so; where it does, the page goes on with the token."""

from __future__ import annotations

import re

import httpx
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


def _issues_tokens(server) -> bool:
    r = httpx.post(f"{server.http}/api/v1/tokens", params={"expire_in_seconds": 60},
                   headers={"Authorization": f"Bearer {KEY}"})
    return r.status_code == 200


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
        if _issues_tokens(keyed_server):
            assert "not accepted" in wrong, wrong
            page.wait_for_function("document.querySelector('#live-model').options.length > 0")
            page.click("#tab-vocab")
            page.wait_for_selector("#vocab-list li")
        else:
            page.wait_for_function("document.querySelector('#key-error').textContent.includes('tokens')")
            assert "does not issue tokens" in page.text_content("#key-error")
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
