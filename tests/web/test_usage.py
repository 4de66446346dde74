"""The console's Usage view in real Chromium, keyed mode: after recognitions made with the key
(official SDK) the view shows that model with the audio seconds, requests and failures that
`GET /api/v1/usage` reports for the key, for today and the last 30 days; Refresh picks up a new
recognition; both languages; reachable by keyboard; fits 360 px in light and dark; no JavaScript
errors. Assertions are on content, never on timings."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import FAST_ENV
from tests.support import ServerProcess, clip_pcm, sdk_at
from tests.web.conftest import Page

KEY = "sk-console-usage-key-5678"
MODEL = "paraformer-realtime-v2"
CLIP = "en_ldc93s1"  # 2.9 s of speech: cheap to recognize
TIMEOUT = 120.0  # generous: the machine is shared
# The browser reports every non-2xx answer as a console error; the page's first probe is a 401.
EXPECTED_HTTP = re.compile(r"Failed to load resource: the server responded with a status of 401")


@pytest.fixture(scope="module")
def keyed_server():
    srv = ServerProcess(env=FAST_ENV, config={"server": {"api_keys": [KEY]}}).start()
    yield srv
    srv.stop()


def _recognize(srv: ServerProcess, tmp: Path) -> None:
    from dashscope.audio.asr import Recognition

    path = tmp / "clip.pcm"
    path.write_bytes(clip_pcm(CLIP))
    with sdk_at(srv, KEY):
        res = Recognition(model=MODEL, format="pcm", sample_rate=16000, callback=None).call(str(path))
    assert res.status_code == 200, res
    assert res.usage["duration"] > 0, res.usage


def _api_usage(srv: ServerProcess) -> dict[str, dict]:
    """The key's rows for the last 30 UTC days, summed per model (as the view shows them)."""
    since = (datetime.now(UTC) - timedelta(days=29)).date().isoformat()
    resp = httpx.get(srv.http + "/api/v1/usage", params={"since": since}, timeout=TIMEOUT,
                     headers={"Authorization": f"Bearer {KEY}"})
    assert resp.status_code == 200, resp.text
    out: dict[str, dict] = {}
    for row in resp.json()["output"]["usage"]:
        s = out.setdefault(row["model"], {"audio_seconds": 0.0, "requests": 0, "tasks": 0,
                                          "failures": 0})
        for f in s:
            s[f] += row[f]
    return out


def _hms(seconds: float) -> str:
    s = math.ceil(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _row(page, table: str) -> dict[str, str]:
    sel = f"#{table} tr[data-model='{MODEL}']"
    return {f: page.text_content(f"{sel} td[data-field='{f}']").strip()
            for f in ("audio_seconds", "requests", "tasks", "failures")}


def _expect(page, table: str, usage: dict) -> None:
    """The view's row for MODEL in `table` shows `usage` (waits for the load to land)."""
    want = {"audio_seconds": _hms(usage["audio_seconds"]), "requests": str(usage["requests"]),
            "tasks": str(usage["tasks"]), "failures": str(usage["failures"])}
    page.wait_for_function(
        """([table, model, requests]) => {
             const c = document.querySelector(
               `#${table} tr[data-model='${model}'] td[data-field='requests']`);
             return c && c.textContent.trim() === requests; }""",
        arg=[table, MODEL, want["requests"]])
    assert _row(page, table) == want


def _login(p: Page, url: str) -> None:
    page = p.page
    page.goto(url + "/")
    page.wait_for_selector("#key-dialog[open]")
    page.fill("#key-input", KEY)
    page.click("#key-form button")
    page.wait_for_function("document.querySelector('#live-model').options.length > 0")


def test_usage_view_matches_the_usage_api(browser, keyed_server, tmp_path):
    _recognize(keyed_server, tmp_path)
    first = _api_usage(keyed_server)[MODEL]
    assert first["audio_seconds"] > 0 and first["requests"] >= 1, first

    p = Page(browser, keyed_server.http, viewport={"width": 1200, "height": 860})
    try:
        page = p.page
        _login(p, keyed_server.http)
        # keyboard: from the first tab, End selects the last one (Usage) and loads it
        page.focus("#tab-live")
        page.keyboard.press("End")
        assert page.evaluate("document.activeElement.id") == "tab-usage"
        assert page.is_visible("#panel-usage")
        _expect(page, "usage-today", first)
        _expect(page, "usage-month", first)
        p.shot("usage-en")

        # a second recognition with the same key; Refresh shows the new totals
        _recognize(keyed_server, tmp_path)
        second = _api_usage(keyed_server)[MODEL]
        assert second["requests"] == first["requests"] + 1, (first, second)
        page.click("#usage-refresh")
        _expect(page, "usage-today", second)
        _expect(page, "usage-month", second)

        # Chinese: the labels follow, the figures stay
        page.select_option("#ui-lang", "zh-CN")
        assert page.text_content("#tab-usage") == "用量"
        assert "今天" in page.text_content("#usage-today-title")
        assert "音频时长" in page.text_content("#usage-month thead")
        _expect(page, "usage-month", second)
        p.shot("usage-zh")
        unexpected = [e for e in p.errors if not EXPECTED_HTTP.search(e)]
        assert not unexpected, unexpected
    finally:
        p.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_usage_view_fits_a_phone(browser, keyed_server, tmp_path, scheme):
    if MODEL not in _api_usage(keyed_server):
        _recognize(keyed_server, tmp_path)
    usage = _api_usage(keyed_server)[MODEL]
    p = Page(browser, keyed_server.http, viewport={"width": 360, "height": 800},
             color_scheme=scheme)
    try:
        page = p.page
        _login(p, keyed_server.http)
        page.click("#tab-usage")
        _expect(page, "usage-month", usage)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        # every figure carries its label on a phone (the table head is hidden there)
        label = page.evaluate(
            f"""getComputedStyle(document.querySelector(
                  "#usage-month tr[data-model='{MODEL}'] td[data-field='audio_seconds']"),
                '::before').content""")
        assert "Audio" in label, label
        p.shot(f"usage-360-{scheme}")
        unexpected = [e for e in p.errors if not EXPECTED_HTTP.search(e)]
        assert not unexpected, unexpected
    finally:
        p.close()


def test_usage_view_in_open_mode(console):
    """With no keys configured the view loads too (the server's one open owner), error-free."""
    page = console.open("#usage")
    page.wait_for_selector("#panel-usage[data-loaded]")
    assert page.is_visible("#usage-today") and page.is_visible("#usage-month")
    assert page.text_content("#usage-month tbody").strip()  # rows, or "No usage yet."
