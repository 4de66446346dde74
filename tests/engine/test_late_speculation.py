"""Speculative finals while finals load the model but do not fill it (issue 12, Streams): the
band between `speculate_max_final_share` and SPECULATE_OFF_FINAL_SHARE, off by default since its
8-stream measurement (engine/load.py); here with the band at 0.8 (VOXSCOPE_SPECULATE_OFF_FINAL_SHARE).

At 4 streams with short finals the share of model time on finals sits above
`speculate_max_final_share` (0.5) much of the time; session 8 switched speculation off there, so
every final waited the whole pause (1.3 s) and then queued. Between that share and
`SPECULATE_OFF_FINAL_SHARE` the final is now asked for once the pause reaches
`BUSY_SPECULATIVE_SILENCE_MS` (a shorter breath costs no decode; a longer one's decode is
cancelled when speech resumes); at or above it, none ahead of the limit, as before (8 streams).
Model-free: scripted VAD probabilities, the scheduler stand-in and a load meter on a fake clock.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.engine.test_recognizer_driver import settle, silence, speech
from tests.engine.test_speculation_load import FRAME, _session
from voxscope.engine import recognizer
from voxscope.engine.load import SPECULATE_MAX_FINAL_SHARE, SPECULATE_OFF_FINAL_SHARE
from voxscope.engine.streaming import segmenter
from voxscope.engine.streaming.segmenter import Closed, EndpointConfig, Paused, Segmenter

BAND_TOP = 0.8
LOADED = (SPECULATE_MAX_FINAL_SHARE + BAND_TOP) / 2
FRAME_S = FRAME / 16000


@pytest.fixture(autouse=True)
def band_on(monkeypatch):
    monkeypatch.setattr(recognizer, "SPECULATE_OFF_FINAL_SHARE", BAND_TOP)


def test_the_band_is_off_by_default():
    assert SPECULATE_OFF_FINAL_SHARE <= SPECULATE_MAX_FINAL_SHARE


def _pause_of(seconds: float) -> list[float]:
    one = round(1 / FRAME_S)
    return [0.9] * one + [0.02] * round(seconds / FRAME_S)


@pytest.mark.parametrize(("loaded", "full"), [(False, False), (True, False), (True, True)])
def test_segmenter_speculation_delay_by_load(loaded, full):
    seg = Segmenter(EndpointConfig(), final_latency_s=lambda: 1.0,
                    finals_busy=lambda: full, finals_loaded=lambda: loaded)
    speech_frames = round(1 / FRAME_S)
    events, when = [], None  # when: pause length at the Paused event
    for i, p in enumerate(_pause_of(1.6)):
        new = seg.feed(p, i * FRAME, (i + 1) * FRAME)
        if when is None and any(isinstance(e, Paused) for e in new):
            when = (i + 1 - speech_frames) * FRAME_S
        events += new
    paused = next(e for e in events if isinstance(e, Paused))
    closed = next(e for e in events if isinstance(e, Closed))
    assert when is not None
    limit_s = EndpointConfig().max_sentence_silence_ms / 1000
    if full:  # none ahead of the limit: asked for at the close, for the audio it keeps
        assert when >= limit_s - FRAME_S and paused.end == closed.end
    elif loaded:
        assert segmenter.BUSY_SPECULATIVE_SILENCE_MS / 1000 <= when + 1e-9 < limit_s - 0.3
    else:
        assert when < segmenter.BUSY_SPECULATIVE_SILENCE_MS / 1000


def test_loaded_a_breath_costs_no_decode_and_a_real_pause_is_speculated_before_the_limit():
    async def main() -> None:
        s, _ = _session(LOADED)
        await s.feed(np.concatenate([silence(0.512), speech(1.504), silence(0.448)]))
        assert s.sched.pending(final=True) == []  # a breath: nothing asked for
        await s.feed(np.concatenate([speech(1.0), silence(0.8)]))
        (spec,) = s.sched.pending(final=True)  # asked for at ~0.6 s of pause, before 1.3 s
        assert not s.finals
        s.sched.resolve(spec, "One sentence with a breath in it.")
        await settle()
        assert not s.finals  # the pause has not reached the limit yet
        await s.feed(silence(0.8))
        assert [r.text for r in s.finals] == ["One sentence with a breath in it."]
        assert s.rec.stats.speculative_hits == 1 and s.rec.stats.speculative_misses == 0
        assert len([r for r in s.sched.requests if r.final]) == 1

    asyncio.run(main())


def test_loaded_speech_after_the_late_trigger_cancels_it_and_the_sentence_still_ends_once():
    async def main() -> None:
        s, _ = _session(LOADED)
        await s.feed(np.concatenate([silence(0.512), speech(1.504), silence(0.8)]))
        (stale,) = s.sched.pending(final=True)
        await s.feed(np.concatenate([speech(1.0), silence(1.6)]))
        assert stale.future.cancelled()
        (final,) = s.sched.pending(final=True)
        s.sched.resolve(final, "Two parts, one sentence.")
        await settle()
        await s.rec.finish()
        assert [r.text for r in s.finals] == ["Two parts, one sentence."]
        assert s.rec.stats.speculative_misses == 1 and s.rec.stats.speculative_hits == 1

    asyncio.run(main())
