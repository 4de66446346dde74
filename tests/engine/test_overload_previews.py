"""Previews degrade first under overload (issue 12, Overload), without the model or the wall
clock: a scheduler stand-in and a load meter on a fake clock.

A sentence that closes before any preview of it was shown has a queued preview. It is promoted
to final priority, also while finals keep the model busy (`speculate_max_final_share`): a
sentence sent in a burst keeps the final share high, and it must still show one preview before
its final (dropping it there, tried in session 8 against overload, broke that contract).
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.engine.test_recognizer_driver import Session, settle, silence, speech
from tests.engine.test_speculation_load import Clock, MeteredScheduler
from voxscope.engine.load import SPECULATE_MAX_FINAL_SHARE, LoadMeter
from voxscope.engine.types import Priority


def _session(final_share: float) -> Session:
    clock = Clock()
    meter = LoadMeter(window_s=15.0, clock=clock)
    meter.record(clock.t - 15.0 * final_share, clock.t, Priority.FINAL, [0.0])
    s = Session(partials=True)
    s.sched = s.rec._sched = MeteredScheduler(meter)
    return s


async def promoted_then_final(s: Session) -> None:
    """The closed sentence's queued preview went to final priority and is shown before its final."""
    finals = [r for r in s.sched.requests if r.priority == Priority.FINAL]
    (promoted,) = [r for r in finals if not r.options.word_timestamps]
    assert not promoted.future.done()  # queued, now at a final's priority
    s.sched.resolve(promoted, "A sentence")
    (final,) = [r for r in finals if r.options.word_timestamps]
    s.sched.resolve(final, "A sentence in a burst.")
    await settle()
    assert [r.text for r in s.finals] == ["A sentence in a burst."]
    assert len([r for r in s.results if not r.final]) == 1


@pytest.mark.parametrize("final_share", [0.1, SPECULATE_MAX_FINAL_SHARE + 0.1])
def test_queued_preview_promoted_whatever_the_final_share(final_share):
    async def main() -> None:
        s = _session(final_share)
        # A sentence whose previews are never decoded (the model is behind), then its end.
        await s.feed(np.concatenate([silence(0.512), speech(2.0), silence(1.8)]))
        await promoted_then_final(s)

    asyncio.run(main())
