"""Speculative finals under load on a real server, through the official SDK (issue 12, Overload).

The server is configured so that the model always counts as busy with finals
(`speculate_max_final_share: 0`): no final is asked for ahead of a pause's limit. A sentence with a
breath in it (a pause shorter than `max_sentence_silence`) then costs no stale decode, is still
finalized whole, and every sentence's final is the decode asked for at its limit: /metrics counts
only speculative hits, and the final work per sentence admission prices streams by. Only counts,
texts and codes are asserted: nothing depends on how fast the machine is.
"""

from __future__ import annotations

import time

import pytest
from dashscope.audio.asr import Recognition

from tests.hardening.test_admission import Collector
from tests.operations.test_metrics import scrape, value
from tests.support import (
    ServerProcess,
    clip,
    clip_pcm,
    error_rate,
    sdk_at,
    sdk_start_waits,
    silence_pcm,
    trim_silence,
)

FRAME = 3200  # 100 ms of 16 kHz s16le
CLIP = "en_ldc93s1"
SECOND = "en_ljspeech_LJ001-0001"  # read speech without a pause as long as a sentence's end
WAIT_S = 240  # generous: the machine is shared


@pytest.fixture(scope="module")
def server():
    # A long load window: every sentence of the stream stays in the per-sentence measure.
    # (VOXSCOPE_SPECULATE_OFF_FINAL_SHARE=0: none before the limit, not a late one after 600 ms.)
    srv = ServerProcess(config={"server": {"speculate_max_final_share": 0,
                                           "load_window_s": 300.0}},
                        env={"VOXSCOPE_SPECULATE_OFF_FINAL_SHARE": "0"}).start()
    with sdk_at(srv):
        yield srv
    srv.stop()


def test_a_breath_costs_no_stale_final_when_finals_keep_the_model_busy(server):
    sentence = clip_pcm(CLIP)
    # First sentence: two clips with a 0.6 s breath between (longer than the 240 ms speculation
    # floor, shorter than the 1.3 s pause that ends a sentence); then three more.
    pcm = (silence_pcm(0.5) + sentence + silence_pcm(0.6) + trim_silence(clip_pcm(SECOND))
           + silence_pcm(2.5) + (sentence + silence_pcm(2.5)) * 3)
    cb = Collector()
    rec = Recognition(model="paraformer-realtime-v2", format="pcm", sample_rate=16000,
                      callback=cb)
    sdk_start_waits(rec)  # the SDK's start race (tests/hardening/test_sdk_start_race.py)
    rec.start()
    t0 = time.monotonic()
    for i, pos in enumerate(range(0, len(pcm), FRAME)):
        rec.send_audio_frame(pcm[pos:pos + FRAME])
        time.sleep(max(0.0, t0 + (i + 1) * 0.05 - time.monotonic()))  # twice real time
    rec.stop()
    assert cb.completed.wait(WAIT_S) and not cb.errors, [(e.code, e.message) for e in cb.errors]

    ref = clip(CLIP)["reference"]
    texts = [s["text"] for s in cb.finals]
    assert len(texts) == 4, texts
    # The breath did not split the first sentence: its final holds both halves.
    both = f"{ref} {clip(SECOND)['reference']}"
    assert error_rate("en", both, texts[0]) <= 0.5, texts[0]
    for text in texts[1:]:
        assert error_rate("en", ref, text) <= 0.5, text

    m = scrape(server)
    # Every sentence's final was the decode asked for at its pause limit; none went stale.
    assert value(m, "voxscope_speculative_finals_total", outcome="hit") == 4
    assert value(m, "voxscope_speculative_finals_total", outcome="miss") == 0
    # What admission prices a sentence at: measured final work per sentence closed.
    assert value(m, "voxscope_load_final_sentence_seconds") > 0
