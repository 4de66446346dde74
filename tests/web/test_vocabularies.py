"""Vocabularies view in real Chromium: create, edit and delete round-trip through the
VocabularyService API; DashScope's limits show while typing; the Live view offers the list."""

from __future__ import annotations

import httpx
import pytest


def _api(server, **inp) -> dict:
    r = httpx.post(f"{server.http}/api/v1/services/audio/asr/customization",
                   json={"model": "speech-biasing", "parameters": {}, "input": inp}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["output"]


def _ids(server) -> list[str]:
    return [v["vocabulary_id"] for v in _api(server, action="list_vocabulary", page_size=100)
            ["vocabulary_list"]]


@pytest.fixture()
def clean(web_server):
    for vid in _ids(web_server):
        _api(web_server, action="delete_vocabulary", vocabulary_id=vid)


def test_create_edit_delete_round_trip(console, web_server, clean):
    page = console.open("#vocab")
    page.click("#vocab-new")
    page.select_option("#vocab-model", "paraformer-realtime-v2")
    page.fill("#vocab-prefix", "Bad-Prefix")
    assert page.text_content("#vocab-prefix-error")  # the rule shows while typing
    page.fill("#vocab-prefix", "web")
    assert page.text_content("#vocab-prefix-error") == ""
    page.fill("#vocab-words tr:nth-child(1) .w-text", "voxscope")
    page.select_option("#vocab-words tr:nth-child(1) .w-weight", "5")
    page.select_option("#vocab-words tr:nth-child(1) .w-lang", "en")
    page.click("#vocab-add")
    page.fill("#vocab-words tr:nth-child(2) .w-text", "百炼")
    page.select_option("#vocab-words tr:nth-child(2) .w-lang", "zh")
    page.click("#vocab-editor button[type=submit]")
    page.wait_for_selector("#vocab-list li[data-id]")
    console.shot("vocab-created")
    (vid,) = _ids(web_server)
    got = _api(web_server, action="query_vocabulary", vocabulary_id=vid)
    assert got["target_model"] == "paraformer-realtime-v2" and got["prefix"] == "web"
    assert got["vocabulary"] == [{"text": "voxscope", "weight": 5, "lang": "en"},
                                 {"text": "百炼", "weight": 4, "lang": "zh"}]

    # The Live view offers it for a model with hot words.
    assert page.locator(f'#live-vocab option[value="{vid}"]').count() == 1

    # Edit: change a word, remove another, and see a limit before saving.
    page.click(f'#vocab-list li[data-id="{vid}"] .edit')
    page.fill("#vocab-words tr:nth-child(1) .w-text", "one two three four five six seven eight")
    assert "7" in page.text_content("#vocab-words tr:nth-child(1) .error")
    page.fill("#vocab-words tr:nth-child(1) .w-text", "voxscope console")
    page.click("#vocab-words tr:nth-child(2) .w-remove")
    page.click("#vocab-editor button[type=submit]")
    page.wait_for_function(f"""() => [...document.querySelectorAll('#vocab-list li[data-id="{vid}"] .meta')]
                             .some(e => e.textContent.includes(' · 1 · '))""")
    got = _api(web_server, action="query_vocabulary", vocabulary_id=vid)
    assert got["vocabulary"] == [{"text": "voxscope console", "weight": 5, "lang": "en"}]

    # Delete (after the confirmation dialog).
    page.once("dialog", lambda d: d.accept())
    page.click(f'#vocab-list li[data-id="{vid}"] .delete')
    page.wait_for_selector("#vocab-list li.empty")
    assert _ids(web_server) == []
    console.shot("vocab-deleted")


def test_vocabulary_made_by_the_api_shows_in_the_page(console, web_server, clean):
    vid = _api(web_server, action="create_vocabulary", target_model="fun-asr", prefix="sdk",
               vocabulary=[{"text": "Bailian", "weight": 4, "lang": "en"}])["vocabulary_id"]
    page = console.open("#vocab")
    page.wait_for_selector(f'#vocab-list li[data-id="{vid}"]')
    assert "fun-asr" in page.text_content(f'#vocab-list li[data-id="{vid}"] .meta')
    # A file model's vocabulary is offered in the Files view for that model only.
    page.click("#tab-files")
    page.select_option("#file-model", "fun-asr")
    assert page.locator(f'#file-vocab option[value="{vid}"]').count() == 1
    page.select_option("#file-model", "paraformer-v2")
    assert page.locator(f'#file-vocab option[value="{vid}"]').count() == 0


def test_chinese_ui_and_narrow_dark_screen(browser, web_server):
    """Simplified Chinese chosen from the browser's language; usable at 360 px in dark mode."""
    from tests.web.conftest import Page

    p = Page(browser, web_server.http, viewport={"width": 360, "height": 780}, locale="zh-CN",
             color_scheme="dark")
    try:
        page = p.open()
        assert page.text_content("#tab-live") == "实时"
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        # Nothing wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        p.shot("console-zh-360-dark")
        page.select_option("#ui-lang", "en")
        assert page.text_content("#tab-live") == "Live"
        # Keyboard: arrow keys move between tabs.
        page.focus("#tab-live")
        page.keyboard.press("ArrowRight")
        assert page.evaluate("document.activeElement.id") == "tab-files"
        assert page.is_visible("#panel-files") and not page.is_visible("#panel-live")
        assert not p.errors, p.errors
    finally:
        p.close()
