"""Previews degrade first, only for a stream that is behind (issue 12, Overload): a sentence that
closes with a queued, never-shown preview drops it (one final-priority decode per sentence) when
the stream's audio arrives at real-time pace or slower and finals keep the model busy; a stream
sent in a burst still has it promoted, so it shows one preview before its final.

Model-free, no wall clock: a scheduler stand-in, a load meter on a fixed fake clock, and the
stream's pace on a fake clock the test advances with the audio it feeds."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.engine.test_overload_previews import promoted_then_final
from tests.engine.test_recognizer_driver import SR, Session, settle, silence, speech
from tests.engine.test_speculation_load import Clock, MeteredScheduler
from voxscope.engine.load import SPECULATE_MAX_FINAL_SHARE, LoadMeter
from voxscope.engine.streaming.pace import Pace
from voxscope.engine.types import Priority

CHUNK_S = 0.1
SENTENCE = np.concatenate([silence(0.512), speech(2.0), silence(1.8)])


def _session(final_share: float) -> tuple[Session, Clock]:
    meter_clock = Clock()
    meter = LoadMeter(window_s=15.0, clock=meter_clock)
    meter.record(meter_clock.t - 15.0 * final_share, meter_clock.t, Priority.FINAL, [0.0])
    s = Session(partials=True)
    s.sched = s.rec._sched = MeteredScheduler(meter)
    pace_clock = Clock()
    s.rec._pace = Pace(SR, clock=pace_clock)
    s.rec.drop_previews_when_behind = True  # off by default (config.py says why)
    return s, pace_clock


async def _feed(s: Session, clock: Clock, audio: np.ndarray, speed: float | None) -> None:
    """Feed in CHUNK_S chunks, the wall clock advancing CHUNK_S / speed per chunk (None: a burst,
    the clock stands still)."""
    step = int(CHUNK_S * SR)
    for pos in range(0, audio.size, step):
        if speed is not None:
            clock.t += CHUNK_S / speed
        s.rec.feed(audio[pos:pos + step])
        await settle()


BUSY = SPECULATE_MAX_FINAL_SHARE + 0.1


@pytest.mark.parametrize("speed", [1.0, 0.8])
def test_a_stream_at_real_time_pace_that_is_behind_drops_the_preview(speed):
    async def main() -> None:
        s, clock = _session(BUSY)
        await _feed(s, clock, SENTENCE, speed)  # its previews are never decoded: behind
        previews = [r for r in s.sched.requests if r.priority == Priority.PARTIAL]
        finals = [r for r in s.sched.requests if r.priority == Priority.FINAL]
        # Dropped (answered "superseded"): the sentence costs one final-priority decode.
        assert previews and all(r.future.done() and r.future.result() is None for r in previews)
        (final,) = finals
        s.sched.resolve(final, "A sentence at real-time pace.")
        await settle()
        assert [r.text for r in s.finals] == ["A sentence at real-time pace."]
        assert [r for r in s.results if not r.final] == []

    asyncio.run(main())


@pytest.mark.parametrize(("speed", "final_share"), [(None, BUSY), (3.0, BUSY), (1.0, 0.1)])
def test_the_preview_is_promoted_for_a_burst_or_while_the_model_keeps_up(speed, final_share):
    async def main() -> None:
        s, clock = _session(final_share)
        await _feed(s, clock, SENTENCE, speed)
        await promoted_then_final(s)

    asyncio.run(main())


def test_pace_measures_audio_against_the_wall_clock():
    clock = Clock()
    pace = Pace(SR, clock=clock)
    assert pace.ahead_s() == 0.0
    pace.fed(SR // 10)  # the first chunk starts the clock
    clock.t += 0.1
    pace.fed(SR // 10)
    assert pace.ahead_s() == pytest.approx(0.1)  # real time: one chunk ahead
    pace.fed(5 * SR)  # a burst
    assert pace.ahead_s() == pytest.approx(5.1)
    clock.t += 10
    assert pace.ahead_s() == pytest.approx(-4.9)  # slower than real time
