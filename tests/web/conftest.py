"""Browser fixtures: Debian's chromium driven by Playwright against a real `voxscope serve`.

Each page records JavaScript errors (console errors and uncaught exceptions); the test fails if
any happened. Screenshots go to tests/web/artifacts/ (git-ignored), kept as test artifacts.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAST_ENV
from tests.support import ServerProcess

CHROMIUM = os.environ.get("VOXSCOPE_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
BASE_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Generous: two shared CPU cores run the model and the browser at once.
TIMEOUT_MS = float(os.environ.get("VOXSCOPE_TEST_BROWSER_TIMEOUT_S", "300")) * 1000

try:
    from playwright import sync_api
except ImportError:  # the tests below skip, with the reason
    sync_api = None  # type: ignore[assignment]
MISSING = ("playwright is not installed (pip install playwright)" if sync_api is None
           else None if Path(CHROMIUM).exists()
           else f"chromium not found at {CHROMIUM} (apt-get install chromium)")


def pytest_collection_modifyitems(config, items) -> None:
    """Without a browser the browser tests skip (with the reason) rather than fail."""
    if MISSING:
        here = Path(__file__).resolve().parent
        for item in items:
            if here in Path(str(item.fspath)).resolve().parents:
                item.add_marker(pytest.mark.skip(reason=MISSING))


def launch_browser(extra_args: list[str] | None = None):
    """(playwright, browser); the caller closes both."""
    pw = sync_api.sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BASE_ARGS + (extra_args or []))
    except Exception:
        pw.stop()
        raise
    return pw, browser


class Page:
    """A page of the console with its JavaScript errors collected."""

    def __init__(self, browser, url: str, **context_args) -> None:
        self.context = browser.new_context(**context_args)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.url = url

    def open(self, hash_: str = "") -> sync_api.Page:
        self.page.goto(self.url + "/" + hash_)
        self.page.wait_for_function("document.querySelector('#live-model').options.length > 0")
        return self.page

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def web_server() -> Iterator[ServerProcess]:
    srv = ServerProcess(env=FAST_ENV, config={"server": {"max_sessions": 4}}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    pw, b = launch_browser()
    yield b
    b.close()
    pw.stop()


@pytest.fixture()
def console(browser, web_server) -> Iterator[Page]:
    """A fresh page context on the module's server; asserts no JavaScript errors at the end."""
    p = Page(browser, web_server.http, viewport={"width": 1200, "height": 900},
             accept_downloads=True)
    yield p
    errors = list(p.errors)
    p.close()
    assert not errors, f"JavaScript errors in the console: {errors}"
