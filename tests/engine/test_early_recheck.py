"""A short final's full-window recheck asked for beside it at the close (issue 12, Overload).

With `early_recheck: language`, a sentence whose previews were decoded in the language carried over
from the stream's last final, with no language check back, gets its full-window decode submitted
at the close next to the short one: used when the short final disagrees with the previews (the
sentence waits for the longer of the two, not both), cancelled when it agrees. Model-free and
without the wall clock: a scheduler stand-in whose decodes the test answers.
"""

from __future__ import annotations

import asyncio

import numpy as np

from tests.engine.test_recognizer_driver import (
    FakeScheduler,
    Request,
    Session,
    settle,
    silence,
    speech,
)
from voxscope.engine.types import Priority

SENTENCE_S = 5.0  # over 4 s: a short final with a preview check, never "unpreviewed"


def _finals(s: Session) -> list[Request]:
    return [r for r in s.sched.requests
            if r.priority == Priority.FINAL and r.options.word_timestamps]


async def _sentence(s: Session, *, check_language: bool, language: str = "en",
                    preview: str = "Hello there") -> list[Request]:
    """A 5 s sentence in a stream whose `language` was carried over; its first preview (in that
    language) is shown as `preview`; the language check preview is answered only when
    `check_language`. Returns the final-priority transcribe requests at the close."""
    s.rec._stream_language = language  # as after a final in that language
    audio = np.concatenate([silence(0.512), speech(SENTENCE_S), silence(1.8)])
    step = int(0.1 * 16000)
    shown = False
    for pos in range(0, audio.size, step):
        s.rec.feed(audio[pos:pos + step])
        await settle()
        for r in s.sched.pending(final=False):
            if r.priority != Priority.PARTIAL:
                continue
            if r.options.language == language and not shown:
                answer(r, preview, language)
                shown = True
            elif r.options.language is None and check_language:
                answer(r, preview, language)  # the check: the same language
        await settle()
    assert shown and [p.text for p in s.results][:1] == [preview]
    return _finals(s)


def answer(r: Request, text: str, language: str) -> None:
    """Answer a decode with `text` (one word each, CJK too) in `language`."""
    FakeScheduler.resolve(r, text)
    if r.future.done() and not r.future.cancelled():
        r.future.result().language = language


def _session(mode: str = "language") -> Session:
    s = Session(final_full_window=False)
    s.rec.early_recheck = mode
    return s


def test_the_full_window_decode_is_asked_at_the_close_and_used_when_the_short_final_disagrees():
    async def main() -> None:
        s = _session()
        short, early = await _sentence(s, check_language=False)
        assert not short.options.full_window
        assert early.options.full_window and early.audio.size == short.audio.size
        # Answered before the short one: nothing more is asked for after the disagreement.
        s.sched.resolve(early, "Hello there my friend.")
        s.sched.resolve(short, "Yellow chair by friend.")
        await settle()
        assert [r.text for r in s.finals] == ["Hello there my friend."]
        assert _finals(s) == [short, early]
        assert (s.rec.stats.final_rechecks, s.rec.stats.early_rechecks_used) == (1, 1)

    asyncio.run(main())


def test_an_early_recheck_is_cancelled_when_the_short_final_agrees():
    async def main() -> None:
        s = _session()
        short, early = await _sentence(s, check_language=False)
        s.sched.resolve(short, "Hello there my friend.")
        await settle()
        # Delivered without waiting for the full window; its decode is cancelled (a queued one
        # is skipped by the scheduler).
        assert [r.text for r in s.finals] == ["Hello there my friend."]
        assert early.future.cancelled()
        assert (s.rec.stats.final_rechecks, s.rec.stats.early_rechecks_dropped) == (0, 1)

    asyncio.run(main())


def test_the_short_final_disagreeing_later_still_waits_for_the_early_decode():
    async def main() -> None:
        s = _session()
        short, early = await _sentence(s, check_language=False)
        s.sched.resolve(short, "Yellow chair by friend.")
        await settle()
        assert s.finals == [] and not early.future.done()
        s.sched.resolve(early, "Hello there my friend.")
        await settle()
        assert [r.text for r in s.finals] == ["Hello there my friend."]
        assert _finals(s) == [short, early]

    asyncio.run(main())


def test_no_early_recheck_after_a_language_check_or_with_the_setting_off():
    async def main() -> None:
        for mode, checked in (("language", True), ("off", False)):
            s = _session(mode)
            (short,) = await _sentence(s, check_language=checked)
            s.sched.resolve(short, "Yellow chair by friend.")
            await settle()
            (_, recheck) = _finals(s)  # asked for after the short final disagreed, as before
            assert recheck.options.full_window
            s.sched.resolve(recheck, "Hello there my friend.")
            await settle()
            assert [r.text for r in s.finals] == ["Hello there my friend."]
            assert s.rec.stats.early_rechecks_used == s.rec.stats.early_rechecks_dropped == 0

    asyncio.run(main())


def test_a_stream_closed_meanwhile_cancels_its_early_recheck():
    async def main() -> None:
        s = _session()
        short, early = await _sentence(s, check_language=False)
        s.rec.close()
        await settle()
        assert early.future.cancelled()

    asyncio.run(main())
