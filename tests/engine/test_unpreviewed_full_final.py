"""A short-window final sure to be rechecked is decoded in the full window at once (issue 12,
Overload): with `final_window: short`, a sentence under 4 s that no shown preview saw whole is
always decoded again in the full window (final_guard "unpreviewed"), so its short decode only
delays the final. Model-free, no wall clock: a scheduler stand-in and a load meter on a fake clock
(finals busy: no speculative final, so the close submits the final)."""

from __future__ import annotations

import asyncio

import numpy as np

from tests.engine.test_recognizer_driver import Session, settle, silence, speech
from tests.engine.test_speculation_load import Clock, MeteredScheduler
from voxscope.engine.load import SPECULATE_MAX_FINAL_SHARE, LoadMeter
from voxscope.engine.types import Priority

SENTENCE = np.concatenate([silence(0.512), speech(2.0), silence(1.8)])


def _session(final_share: float, **config) -> Session:
    clock = Clock()
    meter = LoadMeter(window_s=15.0, clock=clock)
    meter.record(clock.t - 15.0 * final_share, clock.t, Priority.FINAL, [0.0])
    s = Session(final_full_window=False, **config)
    s.sched = s.rec._sched = MeteredScheduler(meter)
    return s


def _finals(s: Session):
    return [r for r in s.sched.requests if r.priority == Priority.FINAL]


def test_an_unpreviewed_short_sentence_is_decoded_once_in_the_full_window():
    async def main() -> None:
        s = _session(SPECULATE_MAX_FINAL_SHARE + 0.1, partials=False)
        await s.feed(SENTENCE)
        (final,) = _finals(s)
        assert final.options.full_window and final.options.word_timestamps
        s.sched.resolve(final, "A short sentence.")
        await settle()
        assert [r.text for r in s.finals] == ["A short sentence."]
        assert _finals(s) == [final]  # no recheck after it
        assert s.rec.stats.final_rechecks == 0

    asyncio.run(main())


def test_the_setting_off_keeps_short_then_recheck():
    async def main() -> None:
        s = _session(SPECULATE_MAX_FINAL_SHARE + 0.1, partials=False)
        s.rec.full_final_when_unpreviewed = False
        await s.feed(SENTENCE)
        (short,) = _finals(s)
        assert not short.options.full_window
        s.sched.resolve(short, "A short sentence.")
        await settle()
        (_, recheck) = _finals(s)
        assert recheck.options.full_window
        s.sched.resolve(recheck, "A short sentence.")
        await settle()
        assert [r.text for r in s.finals] == ["A short sentence."]

    asyncio.run(main())


def test_a_promoted_preview_leaves_the_decision_to_the_recheck():
    """Burst-sent with previews while the model keeps up: the queued preview is promoted and may
    still show the sentence whole, so the final is short and the recheck decides after it."""
    async def main() -> None:
        s = _session(0.1, partials=True)
        await s.feed(SENTENCE)
        finals = _finals(s)
        (promoted,) = [r for r in finals if not r.options.word_timestamps]
        (final,) = [r for r in finals if r.options.word_timestamps]
        assert not final.options.full_window

    asyncio.run(main())
