"""Live view in real Chromium: a fake microphone plays a real clip; the page streams it over the
inference WebSocket, shows partial text while it plays and ends with the clip's words."""

from __future__ import annotations

import time

import pytest

from tests.support import AUDIO_DIR, clip, error_rate, pcm16, silence_pcm, wav_bytes
from tests.web.conftest import Page, launch_browser

CLIP = "en_jfk_inaugural"
LEAD_S, TAIL_S = 0.5, 4.0  # silence around the clip: Chromium loops the file, the tail keeps it apart


@pytest.fixture(scope="module")
def fake_mic(tmp_path_factory):
    """The clip as a 48 kHz 16-bit WAV (what Chromium's fake capture reads), padded with silence."""
    out = tmp_path_factory.mktemp("mic") / f"{CLIP}.wav"
    pcm = pcm16(AUDIO_DIR / clip(CLIP)["path"], 48000)
    out.write_bytes(wav_bytes(silence_pcm(LEAD_S, 48000) + pcm + silence_pcm(TAIL_S, 48000), 48000))
    return out


@pytest.fixture(scope="module")
def mic_browser(fake_mic):
    pw, b = launch_browser(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                            f"--use-file-for-fake-audio-capture={fake_mic}"])
    yield b
    b.close()
    pw.stop()


def test_live_microphone_transcript(mic_browser, web_server):
    p = Page(mic_browser, web_server.http, viewport={"width": 1200, "height": 900})
    try:
        page = p.open()
        page.select_option("#live-model", "paraformer-realtime-v2")
        page.select_option("#live-lang", "en")
        # Count every partial the page shows while the clip plays.
        page.evaluate("""() => { window.__partials = [];
            new MutationObserver(() => { const t = document.querySelector('#live-partial').dataset.text;
              if (t) window.__partials.push(t); })
            .observe(document.querySelector('#live-partial'), {attributes: true, childList: true}); }""")
        page.click("#live-start")
        page.wait_for_selector("#live-stop:not([disabled])")  # task-started arrived
        time.sleep(LEAD_S + clip(CLIP)["duration_s"] + TAIL_S / 2)  # the clip plays in real time
        p.shot("live-listening")
        page.click("#live-stop")
        page.wait_for_selector("#live-start:not([disabled])")  # task-finished, socket closed
        sentences = page.evaluate("window.voxscopeLive.sentences()")
        partials = page.evaluate("window.__partials")
        status = page.text_content("#live-status")
        p.shot("live-done")
        assert status == "Done.", (status, page.text_content("#notice"))
        assert partials, "no partial text was shown while the clip played"
        assert sentences and all(s["end_time"] >= s["begin_time"] for s in sentences), sentences
        text = " ".join(s["text"] for s in sentences)
        wer = error_rate("en", clip(CLIP)["reference"], text)
        assert wer <= 0.15, (wer, text)
        # The transcript is on screen with its times.
        shown = page.locator("#live-sentences li")
        assert shown.count() == len(sentences)
        assert errors_free(p)
    finally:
        p.close()


def errors_free(p: Page) -> bool:
    assert not p.errors, f"JavaScript errors in the console: {p.errors}"
    return True
