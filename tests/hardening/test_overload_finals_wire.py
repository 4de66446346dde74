"""Overload rules through a real server (issue 12, Overload), with the official SDK.

- A short-window final sure to be rechecked (`final_window: short`, a sentence under 4 s that no
  shown preview saw whole) is decoded in the full window once, not short and then again: here
  previews are off (`min_partial_speech_ms` beyond the clip), so every such sentence is one, and
  /metrics must count no recheck while the final is still right.
- Previews degrade first only for streams that are behind: with finals always counted busy
  (`speculate_max_final_share: 0`), a stream sent in a burst still shows a preview before each
  final (the contract o3's unconditional drop broke: tests/protocols/test_inference_sdk.py rows
  6/7), and a stream at real-time pace gets every sentence finalized, in order.
"""

from __future__ import annotations

import pytest

from tests.conftest import FAST_ENV
from tests.hardening.test_final_window_guard import rechecks, stream_paced
from tests.protocols.inference_helpers import check_streamed_run, stream_recognition
from tests.support import (
    ServerProcess,
    clip,
    clip_pcm,
    error_rate,
    sdk_at,
    silence_pcm,
    trim_silence,
)

EN = "en_ldc93s1"  # 2.9 s: one sentence under 4 s


def _server(**settings) -> ServerProcess:
    return ServerProcess(env=FAST_ENV, config={"server": {"max_sessions": 4,
                                                          "final_window": "short",
                                                          **settings}}).start()


@pytest.fixture(scope="module")
def no_preview_server():
    srv = _server(min_partial_speech_ms=60000)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def busy_server():
    srv = _server(speculate_max_final_share=0.0, drop_previews_when_behind=True)
    yield srv
    srv.stop()


@pytest.mark.timeout(180)
def test_an_unpreviewed_short_sentence_is_decoded_once_in_the_full_window(no_preview_server):
    before = rechecks(no_preview_server)
    finals, partials, errors = stream_paced(
        no_preview_server, silence_pcm(0.5) + clip_pcm(EN) + silence_pcm(2.0))
    assert not errors, errors
    assert not partials, partials  # previews off: the sentence is unpreviewed
    text = " ".join(s["text"] for s in finals)
    assert error_rate("en", clip(EN)["reference"], text) <= 0.35, text
    assert rechecks(no_preview_server) == before  # one full-window decode, no recheck


def _two_clips() -> bytes:
    a, b = clip("zh_funasr_asr_example"), clip("zh_cosyvoice_zero_shot_prompt")
    return (trim_silence(clip_pcm(a["id"])) + silence_pcm(1.5)
            + trim_silence(clip_pcm(b["id"])) + silence_pcm(1.5))


@pytest.mark.timeout(180)
def test_a_burst_stream_keeps_a_preview_before_each_final_while_finals_are_busy(busy_server):
    with sdk_at(busy_server):
        run = stream_recognition(_two_clips(), chunk=3200, pace=None, max_sentence_silence=800)
    check_streamed_run(run)  # a partial before every final
    assert len(run.recorder.finals()) >= 2, run.recorder.summary()


@pytest.mark.timeout(180)
def test_a_real_time_stream_gets_every_sentence_finalized_while_finals_are_busy(busy_server):
    with sdk_at(busy_server):
        run = stream_recognition(_two_clips(), chunk=3200, pace=0.1, max_sentence_silence=800)
    check_streamed_run(run, partials_per_sentence=False)  # previews may be dropped: behind
    finals = run.recorder.finals()
    assert len(finals) >= 2, run.recorder.summary()
    reference = "".join(clip(c)["reference"] for c in ("zh_funasr_asr_example",
                                                        "zh_cosyvoice_zero_shot_prompt"))
    assert error_rate("zh", reference, run.recorder.final_text()) <= 0.35, run.recorder.summary()
