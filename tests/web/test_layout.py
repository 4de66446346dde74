"""Each view of the console at phone (360 px) and desktop width, light and dark: nothing wider
than the screen, no JavaScript errors; a screenshot of each as a test artifact."""

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
