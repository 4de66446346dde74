"""Inference WebSocket frame size cap: an audio frame over `max_frame_bytes` fails the task clearly.

A dedicated server with `max_frame_bytes: 65536` (default 1 MiB). The SDK sends each buffer given to
`send_audio_frame()` as one binary frame, so it can produce the oversized frame itself.
"""

from __future__ import annotations

import contextlib
import time

import pytest
from dashscope.audio.asr import Recognition
from dashscope.common.error import InvalidParameter

from tests.conftest import FAST_ENV
from tests.protocols.inference_helpers import (
    Recorder,
    assert_matches,
    check_streamed_run,
    good_call,
    stream_recognition,
)
from tests.support import ServerProcess, clip_pcm, sdk_at

CAP = 65536
EN = "en_ldc93s1"


@pytest.fixture(scope="module")
def capped_server():
    srv = ServerProcess(env=FAST_ENV, config={"server": {"max_frame_bytes": CAP}}).start()
    yield srv
    srv.stop()


@pytest.mark.timeout(30)
def test_frame_over_cap_fails_task(capped_server):
    pcm = clip_pcm(EN)
    assert len(pcm) > CAP + 1000
    with sdk_at(capped_server):
        cb = Recorder()
        r = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000, callback=cb)
        r.start()
        r.send_audio_frame(pcm[: CAP + 1000])  # one frame, 1000 bytes over the cap
        # Keep streaming like a live client: the SDK (2.0.2) only reads server events while it has
        # audio to send (its sender polls the queue with time.sleep inside the event loop).
        deadline = time.monotonic() + 10
        with contextlib.suppress(InvalidParameter):  # raised once the SDK has seen the failure
            while not cb.done.is_set() and time.monotonic() < deadline:
                r.send_audio_frame(pcm[CAP + 1000 : CAP + 4200])
                time.sleep(0.1)
        assert cb.done.wait(2), cb.summary()
        deadline = time.monotonic() + 5
        while "close" not in cb.kinds() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cb.kinds() == ["open", "error", "close"], cb.summary()
        err = cb.errors()[0]
        assert err.status_code == 44 and err.code, cb.summary()
        assert str(CAP) in err.message and "frame" in err.message.lower(), err.message
        with pytest.raises(InvalidParameter):
            r.send_audio_frame(pcm[:3200])
        # the server still serves, and frames up to the cap are fine
        run = stream_recognition(pcm, chunk=CAP, pace=None)
        check_streamed_run(run, partials_per_sentence=False)
        assert_matches(EN, run.recorder.final_text(), run.recorder.summary())
        good_call()
    assert capped_server.alive()
