"""Admission prices streams at the sentence rate measured on a real server (issue 12, Overload).

One SDK stream speaks six short sentences at real-time pace, then goes on sending silence; once it
has run longer than the load window a second stream arrives, which makes admission price a stream.
/metrics then shows the sentences per second it priced at: the sentences closed over the window
divided by the window (one stream, fully measured), not the configured `admit_sentence_rate`.
Nothing here depends on how fast the machine is: the sentence count comes from VAD on the audio
sent, and the window is long enough to hold all but the earliest of them.
"""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from dashscope.audio.asr import Recognition
from dashscope.common.error import InvalidParameter

from tests.hardening.test_admission import WAIT_S, Collector, _metric, _paced
from tests.support import ServerProcess, clip_pcm, sdk_at, silence_pcm

CLIP = "en_ldc93s1"
WINDOW_S = 30.0
CONFIGURED_RATE = 0.5  # far from anything this stream closes (6 in 30 s: 0.2)


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(config={"server": {"max_sessions": 4, "admit_max_load": 0.99,
                                           "load_window_s": WINDOW_S,
                                           "admit_sentence_rate": CONFIGURED_RATE}}).start()
    with sdk_at(srv):
        yield srv
    srv.stop()


def test_stream_priced_at_the_measured_sentence_rate(server):
    sentence = clip_pcm(CLIP)  # ~3 s
    pcm = silence_pcm(0.5) + (sentence + silence_pcm(1.6)) * 6
    speech_s = len(pcm) / 32000
    pcm += silence_pcm(WINDOW_S + 12.0 - speech_s)  # still running when the second one arrives
    running, out = Collector(), {}
    th = threading.Thread(target=_paced, args=(pcm, running, out), daemon=True)
    started = time.monotonic()
    th.start()
    # The second stream once the first has run a whole window (plus set-up time): a fully
    # measured stream, every sentence of it closed less than a window ago.
    time.sleep(max(0.0, started + WINDOW_S + 4.0 - time.monotonic()))
    assert th.is_alive(), "the first stream ended before the second one was offered"
    second = Collector()
    rec = Recognition(model="paraformer-realtime-v2", format="pcm", sample_rate=16000,
                      callback=second)
    # Admission prices a stream now; admitted or refused (a loaded machine) does not matter here.
    rec.start()
    rate = _metric(server, "voxscope_load_sentence_rate")
    with contextlib.suppress(InvalidParameter):  # refused: the SDK has stopped it already
        rec.stop()
    th.join(WAIT_S)
    assert not th.is_alive() and "exception" not in out, out
    assert all(e.code == "Throttling.Capacity" for e in second.errors), second.errors
    assert len(running.finals) == 6, [s["text"] for s in running.finals]
    # k sentences closed in the window / the window / 1 stream; k from 4 (a very slow machine
    # closes the last ones late, the earliest may fall out of the window) to all 6.
    closed = rate * WINDOW_S
    assert closed == pytest.approx(round(closed), abs=1e-6) and 4 <= round(closed) <= 6, rate
