"""Capacity: beyond `max_sessions` concurrent recognition tasks a new task is refused, clearly and
without disturbing the running ones, and the freed slots are usable again right afterwards."""

from __future__ import annotations

import threading
import time

import pytest
from dashscope.audio.asr import Recognition, RecognitionCallback, RecognitionResult

from tests.support import ServerProcess, clip, error_rate, pcm16, sdk_at, sdk_start_waits

FRAME = 3200  # 100 ms of 16 kHz s16le


class Collector(RecognitionCallback):
    def __init__(self) -> None:
        self.finals: list[dict] = []
        self.partials: list[dict] = []
        self.errors: list[RecognitionResult] = []
        self.completed = threading.Event()
        self.failed = threading.Event()

    def on_event(self, result) -> None:
        sentence = result.get_sentence()
        (self.finals if RecognitionResult.is_sentence_end(sentence) else self.partials).append(sentence)

    def on_error(self, result) -> None:
        self.errors.append(result)
        self.failed.set()

    def on_complete(self) -> None:
        self.completed.set()

    def text(self) -> str:
        return " ".join(s["text"] for s in self.finals)


@pytest.fixture(scope="module")
def small_server():
    srv = ServerProcess(config={"server": {"max_sessions": 2}}).start()
    with sdk_at(srv):
        yield srv
    srv.stop()


def _paced(model: str, clip_id: str, cb: Collector, out: dict) -> None:
    try:
        pcm = pcm16(str(clip(clip_id)["file"]), 16000)
        rec = Recognition(model=model, format="pcm", sample_rate=16000, callback=cb)
        sdk_start_waits(rec)  # the SDK's start race (tests/support.py)
        rec.start()
        t0 = time.monotonic()
        for i, pos in enumerate(range(0, len(pcm), FRAME)):
            rec.send_audio_frame(pcm[pos:pos + FRAME])
            delay = t0 + (i + 1) * 0.1 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        rec.stop()
    except Exception as exc:  # reported by the test, not lost in the thread
        out["exception"] = exc


def _wait_active(srv: ServerProcess, n: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    active = srv.health()["active_tasks"]
    while active != n and time.monotonic() < deadline:
        time.sleep(0.05)
        active = srv.health()["active_tasks"]
    return active


def test_third_task_is_refused_while_two_run(small_server):
    runs = [("fun-asr-realtime", "zh_paddlespeech_zh"),
            ("paraformer-realtime-v2", "zh_funasr_asr_example")]
    cbs = [Collector() for _ in runs]
    outs: list[dict] = [{} for _ in runs]
    threads = [threading.Thread(target=_paced, args=(*run, cb, out), daemon=True)
               for run, cb, out in zip(runs, cbs, outs, strict=True)]
    for t in threads:
        t.start()
    assert _wait_active(small_server, 2) == 2, "the two paced tasks never ran at the same time"

    third = Collector()
    rec = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000, callback=third)
    rec.start()
    assert third.failed.wait(15), "the third task was not refused (no on_error)"
    err = third.errors[0]
    assert err.status_code == 44, (err.status_code, err.code, err.message)
    assert isinstance(err.code, str) and err.code.startswith("Throttling"), err.code
    assert "capacity" in err.message.lower(), err.message
    assert not third.completed.is_set() and not third.finals
    # The refusal happened while both tasks were still running (they last ~5 s each).
    assert all(t.is_alive() for t in threads), "the refusal came only after a slot was free"

    for t in threads:
        t.join(60)
    for (model, clip_id), cb, out, t in zip(runs, cbs, outs, threads, strict=True):
        assert not t.is_alive(), f"{model} on {clip_id} did not finish"
        assert "exception" not in out, out
        assert not cb.errors, [(e.code, e.message) for e in cb.errors]
        assert cb.completed.is_set(), f"{model} on {clip_id}: no on_complete"
        c = clip(clip_id)
        err_rate = error_rate(c["lang"], c["reference"], cb.text())
        assert err_rate <= 0.15, (clip_id, cb.text(), err_rate)

    # Slots are free again as soon as the tasks have finished: a new task is accepted at once.
    res = Recognition(model="paraformer-realtime-v2", format="wav", sample_rate=16000,
                      callback=None).call(str(clip("zh_paddlespeech_zh")["file"]))
    assert res.status_code == 200, (res.status_code, res.code, res.message)
    c = clip("zh_paddlespeech_zh")
    text = " ".join(s["text"] for s in res.get_sentence())
    assert error_rate(c["lang"], c["reference"], text) <= 0.15, text
    assert _wait_active(small_server, 0) == 0
    assert small_server.alive()
