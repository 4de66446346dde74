"""Each view of the console at phone (360 px) and desktop width, light and dark: nothing wider
than the screen, no JavaScript errors; a screenshot of each as a test artifact. Also the model
catalogue (GET /v1/models) the console builds its menus from."""

from __future__ import annotations

import pytest

from tests.web.conftest import Page

VIEWS = ["live", "files", "vocab"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [360, 1280])
def test_views_fit_and_render(browser, web_server, width, scheme):
    p = Page(browser, web_server.http, viewport={"width": width, "height": 860}, color_scheme=scheme)
    try:
        page = p.open()
        for view in VIEWS:
            page.click(f"#tab-{view}")
            assert page.is_visible(f"#panel-{view}")
            if view == "vocab":
                page.click("#vocab-new")
                page.wait_for_selector("#vocab-editor:not([hidden])")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, view
            p.shot(f"{view}-{width}-{scheme}")
        assert not p.errors, p.errors
    finally:
        p.close()


def test_model_catalogue_is_openai_shaped(web_server):
    """The catalogue the console builds its menus from is OpenAI's model list (openai SDK)."""
    import openai

    client = openai.OpenAI(api_key="any", base_url=web_server.http + "/v1")
    models = {m.id: m for m in client.models.list()}
    assert {"paraformer-realtime-v2", "gummy-realtime-v1", "paraformer-v2", "qwen3-asr-flash"} <= set(models)
    rt = models["paraformer-realtime-v2"].model_dump()
    assert rt["kind"] == "recognition" and rt["hotwords"] is True and "en" in rt["languages"]
    assert models["qwen3-asr-flash-filetrans"].model_dump()["file_form"] == "qwen"
    assert models["gummy-realtime-v1"].model_dump()["translation_targets"] == ["en"]


def test_microphone_refused_is_explained(browser, web_server):
    """No microphone permission (or none at all): a clear message, and Start works again."""
    p = Page(browser, web_server.http, viewport={"width": 1200, "height": 860})
    try:
        page = p.open()
        page.click("#live-start")
        page.wait_for_selector("#notice:not([hidden])")
        assert "microphone" in page.text_content("#notice").lower()
        assert page.is_enabled("#live-start") and not page.is_enabled("#live-stop")
        p.shot("live-no-microphone")
        assert not p.errors, p.errors
    finally:
        p.close()
