"""Files view in real Chromium: a real clip goes through the upload flow and becomes a file task;
its state, progress and sentences show; the SRT and VTT downloads parse and carry the same text;
a reload keeps the task (history comes from the task list API). Also the task API's progress."""

from __future__ import annotations

import os
import re
import time

import httpx
import pytest

from tests.support import AUDIO_DIR, clip, error_rate, pcm16, sdk_at, wav_bytes

CLIP = "en_librispeech_1995-1837-0001"
SRT_CUE = re.compile(r"(\d+)\n(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n(.+)")
TASK_TIMEOUT_S = float(os.environ.get("VOXSCOPE_TEST_TASK_TIMEOUT_S", "600"))
VTT_CUE = re.compile(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(.+)")


def _ms(stamp: str) -> int:
    h, m, rest = stamp.replace(",", ".").split(":")
    return round((int(h) * 3600 + int(m) * 60 + float(rest)) * 1000)


def _clock_s(text: str) -> float:
    """Seconds from the page's m:ss.s."""
    minutes, seconds = text.strip().split(":")
    return int(minutes) * 60 + float(seconds)


def _download(page, card, kind: str) -> str:
    with page.expect_download() as info:
        card.locator(f'[data-export="{kind}"]').click()
    return open(info.value.path(), encoding="utf-8").read()


@pytest.fixture(scope="module")
def done_task(browser, web_server):
    """Upload the clip through the page once; (task id, sentences on screen)."""
    from tests.web.conftest import Page

    p = Page(browser, web_server.http, viewport={"width": 1200, "height": 900})
    try:
        page = p.open("#files")
        page.select_option("#file-model", "paraformer-v2")
        page.select_option("#file-lang", "en")
        page.set_input_files("#file-input", str(AUDIO_DIR / clip(CLIP)["path"]))
        card = page.locator("li.task").first
        card.locator("progress").wait_for(state="attached")
        page.wait_for_selector('li.task[data-status="SUCCEEDED"] button.sentence')
        # Selecting a sentence plays that part of the picked file.
        last = card.locator("button.sentence").last
        last.click()
        page.wait_for_selector("#player:not([hidden])")
        begin = page.evaluate("document.querySelector('#player').currentTime")
        start, end = (_clock_s(x) for x in last.locator(".time").text_content().split("–"))
        assert start - 0.1 <= begin <= end + 0.1, (start, begin, end)
        assert not p.errors, p.errors
        p.shot("files-done")
        tasks = httpx.get(web_server.http + "/api/v1/tasks").json()["tasks"]
        yield tasks[0]["task_id"], [t.strip() for t in card.locator(".sentence .text").all_text_contents()]
    finally:
        p.close()


def test_upload_shows_sentences(done_task):
    _, texts = done_task
    assert texts
    assert error_rate("en", clip(CLIP)["reference"], " ".join(texts)) <= 0.15, texts


def test_srt_and_vtt_downloads_parse(console, done_task):
    _, texts = done_task
    page = console.open("#files")
    card = page.locator('li.task[data-status="SUCCEEDED"]').first
    card.locator("button.sentence").first.wait_for()
    srt = _download(page, card, "srt")
    cues = [SRT_CUE.fullmatch(block) for block in srt.strip().split("\n\n")]
    assert all(cues), srt
    assert [int(c.group(1)) for c in cues] == list(range(1, len(cues) + 1))
    assert all(_ms(c.group(2)) <= _ms(c.group(3)) for c in cues), srt
    assert [c.group(4) for c in cues] == texts
    vtt = _download(page, card, "vtt")
    assert vtt.startswith("WEBVTT\n\n"), vtt
    vcues = [VTT_CUE.fullmatch(block) for block in vtt[len("WEBVTT\n\n"):].strip().split("\n\n")]
    assert all(vcues), vtt
    assert [c.group(3) for c in vcues] == texts
    assert [(_ms(c.group(1)), _ms(c.group(2))) for c in vcues] == \
        [(_ms(c.group(2)), _ms(c.group(3))) for c in cues]
    txt = _download(page, card, "txt")
    assert txt.split("\n")[:len(texts)] == texts


def test_reload_keeps_the_task(console, done_task):
    task_id, texts = done_task
    page = console.open("#files")
    page.reload()
    card = page.locator('li.task[data-status="SUCCEEDED"]').first
    card.locator("button.sentence").first.wait_for()
    assert [t.strip() for t in card.locator(".sentence .text").all_text_contents()] == texts
    assert card.locator(".name").text_content() == clip(CLIP)["path"]
    console.shot("files-reloaded")


def test_unsupported_file_is_refused_in_the_page(console, tmp_path):
    page = console.open("#files")
    bad = tmp_path / "notes.txt"
    bad.write_text("not audio")
    page.set_input_files("#file-input", str(bad))
    card = page.locator('li.task[data-status="FAILED"]').first
    card.wait_for()
    assert "notes.txt" in card.locator(".error").text_content()


def test_task_api_reports_progress_without_breaking_the_sdk(web_server, done_task):
    task_id, _ = done_task
    out = httpx.get(f"{web_server.http}/api/v1/tasks/{task_id}").json()["output"]
    assert out["task_status"] == "SUCCEEDED" and out["progress"] == 1.0
    listed = httpx.get(f"{web_server.http}/api/v1/tasks").json()["tasks"]
    assert next(t for t in listed if t["task_id"] == task_id)["progress"] == 1.0
    with sdk_at(web_server):
        from dashscope.audio.asr import Transcription

        rsp = Transcription.fetch(task=task_id)
    assert rsp.status_code == 200 and rsp.output["progress"] == 1.0
    assert rsp.output.task_status == "SUCCEEDED"


def _upload(server, data: bytes, name: str) -> str:
    """The SDK's upload flow with raw HTTP: policy, then the policy-signed POST; the oss:// URL."""
    policy = httpx.get(f"{server.http}/api/v1/uploads", params={"action": "getPolicy",
                                                                 "model": "paraformer-v2"}).json()["data"]
    key = f"{policy['upload_dir']}/{name}"
    fields = {"OSSAccessKeyId": policy["oss_access_key_id"], "Signature": policy["signature"],
              "policy": policy["policy"], "key": key, "x-oss-object-acl": policy["x_oss_object_acl"],
              "x-oss-forbid-overwrite": policy["x_oss_forbid_overwrite"], "success_action_status": "200"}
    r = httpx.post(policy["upload_host"], data=fields, files={"file": (name, data, "audio/x-wav")},
                   timeout=60)
    assert r.status_code == 200, r.text
    return f"oss://{key}"


def test_progress_moves_while_running(web_server):
    """A long file reports its share done while RUNNING: within 0..1, never backwards, then 1."""
    pcm = pcm16(AUDIO_DIR / clip("en_osr_us_000_0034_8k")["path"])
    url = _upload(web_server, wav_bytes(pcm * 3), "long.wav")  # ~107 s: many progress steps
    r = httpx.post(f"{web_server.http}/api/v1/services/audio/asr/transcription",
                   headers={"X-DashScope-Async": "enable"},
                   json={"model": "paraformer-v2", "parameters": {"language_hints": ["en"]},
                         "input": {"file_urls": [url]}})
    task_id = r.json()["output"]["task_id"]
    seen: list[tuple[str, float]] = []
    deadline = time.monotonic() + TASK_TIMEOUT_S
    while time.monotonic() < deadline:
        out = httpx.get(f"{web_server.http}/api/v1/tasks/{task_id}").json()["output"]
        seen.append((out["task_status"], out["progress"]))
        if out["task_status"] in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(0.25)
    assert seen[-1] == ("SUCCEEDED", 1.0), seen[-5:]
    values = [p for _, p in seen]
    assert values == sorted(values) and all(0.0 <= p <= 1.0 for p in values), seen
    running = {p for s, p in seen if s == "RUNNING"}
    assert any(0.0 < p < 1.0 for p in running), seen  # the share moved during the run


def test_failed_task_shows_code_and_message(console, tmp_path):
    """A file that claims to be audio but is not: the task fails and the page shows why."""
    page = console.open("#files")
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF-not-really-a-wave-file" * 40)
    page.set_input_files("#file-input", str(bad))
    card = page.locator('li.task[data-status="FAILED"]').first
    card.wait_for()
    message = card.locator(".error").text_content()
    assert re.match(r"[A-Za-z.]+: \S", message), message
    assert card.locator(".name").text_content() == "broken.wav"
    console.shot("files-failed")
