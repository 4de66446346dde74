"""Live view in real Chromium: a fake microphone plays a real clip; the page streams it over the
inference WebSocket, shows partial text while it plays and ends with the clip's words
(WER <= 15 % English, CER <= 20 % Mandarin)."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid

import pytest
import websocket

from tests.support import AUDIO_DIR, clip, error_rate, pcm16, silence_pcm, wav_bytes
from tests.web.conftest import Page, launch_browser

LEAD_S, TAIL_S = 0.5, 4.0  # silence around the clip: Chromium loops the file, the tail keeps it apart
CASES = [("en_jfk_inaugural", "en", 0.15), ("zh_paddlespeech_zh", "zh", 0.20)]


def fake_mic(path, clip_id: str):
    """The clip as a 48 kHz 16-bit WAV (what Chromium's fake capture reads), padded with silence."""
    pcm = pcm16(AUDIO_DIR / clip(clip_id)["path"], 48000)
    path.write_bytes(wav_bytes(silence_pcm(LEAD_S, 48000) + pcm + silence_pcm(TAIL_S, 48000), 48000))
    return path


def run_live(server, tmp_path, clip_id: str, model: str, lang: str, target: str = ""):
    """Play the clip into the Live view; (sentences, partials seen, status text, Page)."""
    wav = fake_mic(tmp_path / f"{clip_id}.wav", clip_id)
    pw, browser = launch_browser(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                                  f"--use-file-for-fake-audio-capture={wav}"])
    p = Page(browser, server.http, viewport={"width": 1200, "height": 900})
    try:
        page = p.open()
        page.select_option("#live-model", model)
        page.select_option("#live-lang", lang)
        if target:
            page.select_option("#live-target", target)
        # Record every partial the page shows while the clip plays.
        page.evaluate("""() => { window.__partials = [];
            new MutationObserver(() => { const t = document.querySelector('#live-partial').dataset.text;
              if (t) window.__partials.push(t); })
            .observe(document.querySelector('#live-partial'), {attributes: true, childList: true}); }""")
        page.click("#live-start")
        page.wait_for_selector("#live-stop:not([disabled])")  # task-started arrived
        time.sleep(LEAD_S + clip(clip_id)["duration_s"] + TAIL_S / 2)  # the clip plays in real time
        p.shot(f"live-listening-{model}-{lang}")
        page.click("#live-stop")
        page.wait_for_selector("#live-start:not([disabled])")  # task-finished, socket closed
        sentences = page.evaluate("window.voxscopeLive.sentences()")
        partials = page.evaluate("window.__partials")
        status = page.text_content("#live-status")
        notice = page.text_content("#notice")
        p.shot(f"live-done-{model}-{lang}")
        assert page.locator("#live-sentences li").count() == len(sentences)  # on screen, with times
        assert not p.errors, f"JavaScript errors in the console: {p.errors}"
        return sentences, partials, status, notice
    finally:
        p.close()
        browser.close()
        pw.stop()


@pytest.mark.parametrize(("clip_id", "lang", "max_error"), CASES)
def test_live_microphone_transcript(web_server, tmp_path, clip_id, lang, max_error):
    sentences, partials, status, notice = run_live(web_server, tmp_path, clip_id,
                                                   "paraformer-realtime-v2", lang)
    assert status == "Done.", (status, notice)
    assert partials, "no partial text was shown while the clip played"
    assert sentences and all(s["end_time"] >= s["begin_time"] for s in sentences), sentences
    text = ("" if lang == "zh" else " ").join(s["text"] for s in sentences)
    err = error_rate(lang, clip(clip_id)["reference"], text)
    assert err <= max_error, (err, text)


def test_live_gummy_translation(web_server, tmp_path):
    """Gummy with a translation target: Mandarin sentences, each with its English translation."""
    sentences, _, status, notice = run_live(web_server, tmp_path, "zh_paddlespeech_zh",
                                            "gummy-realtime-v1", "zh", target="en")
    assert status == "Done.", (status, notice)
    assert error_rate("zh", clip("zh_paddlespeech_zh")["reference"],
                      "".join(s["text"] for s in sentences)) <= 0.20, sentences
    # English: Latin letters and no Han characters (typographic quotes may appear).
    assert sentences and all(re.search("[A-Za-z]", s.get("translation", ""))
                             and not re.search("[\u4e00-\u9fff]", s["translation"])
                             for s in sentences), sentences


def _occupy(server, stop: threading.Event) -> websocket.WebSocket:
    """One recognition task that holds a capacity slot (heartbeat on, silence sent) until stop."""
    ws = websocket.create_connection(server.ws_inference, timeout=60)
    params = {"format": "pcm", "sample_rate": 16000, "heartbeat": True}
    ws.send(json.dumps({"header": {"action": "run-task", "task_id": uuid.uuid4().hex, "streaming": "duplex"},
                        "payload": {"model": "paraformer-realtime-v2", "task_group": "audio", "task": "asr",
                                    "function": "recognition", "input": {}, "parameters": params}}))
    assert json.loads(ws.recv())["header"]["event"] == "task-started"

    def feed() -> None:
        while not stop.wait(0.1):
            try:
                ws.send_binary(silence_pcm(0.1))
            except Exception:
                return

    threading.Thread(target=feed, daemon=True).start()
    return ws


def test_live_server_busy_is_explained(web_server, tmp_path):
    """Every recognition slot taken: Start ends with the 'server is busy' message (Throttling)."""
    wav = fake_mic(tmp_path / "mic.wav", "en_ldc93s1")
    pw, browser = launch_browser(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                                  f"--use-file-for-fake-audio-capture={wav}"])
    p = Page(browser, web_server.http, viewport={"width": 1200, "height": 900})
    stop = threading.Event()
    held: list[websocket.WebSocket] = []
    try:
        page = p.open()
        for _ in range(web_server.health()["max_sessions"]):
            held.append(_occupy(web_server, stop))
        page.click("#live-start")
        page.wait_for_selector("#notice:not([hidden])")
        assert "busy" in page.text_content("#notice"), page.text_content("#notice")
        page.wait_for_selector("#live-start:not([disabled])")
        p.shot("live-busy")
        assert not p.errors, p.errors
    finally:
        stop.set()
        for ws in held:
            ws.close()
        p.close()
        browser.close()
        pw.stop()
