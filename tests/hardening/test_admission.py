"""Admission by measured load on a real server (issue 12, Overload).

The server is configured with an admission limit so low that any measured or assumed final load
of one running stream is "too much": while one stream runs, a second is refused with
Throttling.Capacity on both streaming wires (and says it was the measured load, not
max_sessions), the running stream still gets every sentence's final, and once it has ended a new
stream is admitted again. Nothing here depends on how fast the machine is: only codes, results
and their order.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import websocket
from dashscope.audio.asr import Recognition, RecognitionCallback, RecognitionResult
from prometheus_client.parser import text_string_to_metric_families

from tests.realtime.helpers import KEY, MODEL, rt_url
from tests.support import ServerProcess, clip, clip_pcm, error_rate, sdk_at, sdk_start_waits, silence_pcm

FRAME = 3200  # 100 ms of 16 kHz s16le
CLIP = "en_ldc93s1"
WAIT_S = 180  # generous: the machine is shared


class Collector(RecognitionCallback):
    def __init__(self) -> None:
        self.finals: list[dict] = []
        self.errors: list[RecognitionResult] = []
        self.first_final = threading.Event()
        self.completed = threading.Event()
        self.failed = threading.Event()

    def on_event(self, result) -> None:
        sentence = result.get_sentence()
        if RecognitionResult.is_sentence_end(sentence):
            self.finals.append(sentence)
            self.first_final.set()

    def on_error(self, result) -> None:
        self.errors.append(result)
        self.failed.set()

    def on_complete(self) -> None:
        self.completed.set()


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(config={"server": {"max_sessions": 8, "admit_max_load": 0.001,
                                           "load_window_s": 5.0}}).start()
    with sdk_at(srv):
        yield srv
    srv.stop()


def _paced(pcm: bytes, cb: Collector, out: dict) -> None:
    try:
        rec = Recognition(model="paraformer-realtime-v2", format="pcm", sample_rate=16000,
                          callback=cb)
        sdk_start_waits(rec)  # the SDK's start race (tests/support.py)
        rec.start()
        t0 = time.monotonic()
        for i, pos in enumerate(range(0, len(pcm), FRAME)):
            rec.send_audio_frame(pcm[pos:pos + FRAME])
            time.sleep(max(0.0, t0 + (i + 1) * 0.1 - time.monotonic()))
        rec.stop()
    except Exception as exc:  # reported by the test, not lost in the thread
        out["exception"] = exc


def _metric(srv: ServerProcess, name: str) -> float:
    text = httpx.get(f"{srv.http}/metrics", timeout=30).text
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} not on /metrics")


def test_stream_refused_by_measured_load_while_admitted_one_finishes(server):
    sentence = clip_pcm(CLIP)
    # Two sentences with a pause between them, then silence: the refusal comes between them,
    # so the running stream must still finalize a sentence after it.
    pcm = silence_pcm(0.5) + sentence + silence_pcm(5.0) + sentence + silence_pcm(2.0)
    running, out = Collector(), {}
    th = threading.Thread(target=_paced, args=(pcm, running, out), daemon=True)
    th.start()
    assert running.first_final.wait(WAIT_S), "the running stream's first sentence never ended"
    assert th.is_alive(), "the stream ended before the second one was offered"

    second = Collector()
    rec = Recognition(model="paraformer-realtime-v2", format="pcm", sample_rate=16000,
                      callback=second)
    rec.start()
    assert second.failed.wait(60), "the stream over the measured load was not refused"
    err = second.errors[0]
    assert err.code == "Throttling.Capacity", (err.status_code, err.code, err.message)
    assert "measured load" in err.message, err.message
    assert not second.finals and not second.completed.is_set()

    # The Qwen realtime wire refuses the same way: an `error` event, then the socket closes.
    ws = websocket.create_connection(f"{rt_url(server)}?model={MODEL}", timeout=60,
                                     header=[f"Authorization: Bearer {KEY}"])
    try:
        ev = json.loads(ws.recv())
        assert ev["type"] == "error", ev
        assert ev["error"]["code"].startswith("Throttling"), ev
        assert "measured load" in ev["error"]["message"], ev
    finally:
        ws.close()
    assert th.is_alive(), "the refusals came only after the running stream had ended"

    th.join(WAIT_S)
    assert not th.is_alive() and "exception" not in out, out
    assert not running.errors, [(e.code, e.message) for e in running.errors]
    assert running.completed.is_set()
    ref = clip(CLIP)["reference"]
    assert len(running.finals) == 2, [s["text"] for s in running.finals]
    for s in running.finals:
        assert error_rate("en", ref, s["text"]) <= 0.5, s["text"]

    # The refusal is visible to operators, with the measure it was based on.
    assert _metric(server, "voxscope_load_refused_streams") >= 1
    assert _metric(server, "voxscope_load_admission_limit") == pytest.approx(0.001)
    assert 0.0 <= _metric(server, "voxscope_load_final_share") <= 1.0

    # Nothing runs now: the next stream is admitted and served (the first is always admitted).
    deadline = time.monotonic() + 30
    while server.health()["active_tasks"] and time.monotonic() < deadline:
        time.sleep(0.1)
    res = Recognition(model="paraformer-realtime-v2", format="wav", sample_rate=16000,
                      callback=None).call(str(clip(CLIP)["file"]))
    assert res.status_code == 200, (res.status_code, res.code, res.message)
    text = " ".join(s["text"] for s in res.get_sentence())
    assert error_rate("en", ref, text) <= 0.5, text
    assert server.alive()
