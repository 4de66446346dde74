"""No sentence with speech ends without a final under `final_window: short` (issue 12, Streams).

A short-window final that looks weak is decoded again in the full window (streaming.final_guard).
Before session 9 the full window's answer was kept "words or none": a recheck that came back
empty (a vocabulary's prompt, a silence verdict on clear speech) lost the sentence's only final,
as `tests/hotwords` row 14 did once with short finals. And a short sentence decoded after context
audio whose words all fell in that context was delivered as nothing, without a recheck. Model-free:
the scripted VAD and scheduler stand-in of test_recognizer_driver.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

from tests.engine.test_recognizer_driver import Request, Session, settle, silence, speech
from voxscope.engine.streaming import final_guard
from voxscope.engine.streaming.final_guard import better, weak_reason
from voxscope.engine.types import Transcript, Word

SURE = Transcript("Hello there.", [Word(0.1, 0.5, "Hello", "", " Hello", 0.9),
                                   Word(0.5, 1.0, "there", ".", " there.", 0.9)],
                  "en", 0.99, 0.01, avg_logprob=-0.3, compression_ratio=1.1)
EMPTY = replace(SURE, text="", words=[], no_speech_prob=0.7, avg_logprob=-1.2)


@pytest.fixture(autouse=True)
def short_windows_for_short_sentences(monkeypatch):
    # ~1.5 s sentences: by default the backend decodes those in the full window to begin with.
    monkeypatch.setattr(final_guard, "SHORT_FINAL_FULL_BELOW_S", 0.0)


def test_an_empty_full_window_keeps_short_words_that_are_no_hallucination():
    unsure = replace(SURE, avg_logprob=-0.8)  # rechecked for its logprob, still above Whisper's -1
    assert better(SURE, EMPTY) is SURE
    assert better(unsure, EMPTY) is unsure
    assert better(replace(SURE, avg_logprob=-1.1), EMPTY) is EMPTY  # Whisper's own "not speech"
    assert better(replace(SURE, text=" Thank you."), EMPTY) is EMPTY  # its subtitle filler
    assert better(replace(SURE, text="谢谢观看!"), EMPTY) is EMPTY
    assert better(EMPTY, EMPTY) is EMPTY
    assert better(replace(SURE, avg_logprob=-0.8), replace(SURE, text="Hello.")).text == "Hello."


def test_words_only_in_the_context_count_as_none():
    lead = [Word(0.0, 0.8, "before", "", " before", 0.9), Word(0.8, 1.9, "it", ".", " it.", 0.9)]
    only_context = replace(SURE, text="before it.", words=lead)
    assert weak_reason(only_context, 1.0, lead_s=2.0) == "empty"
    assert weak_reason(only_context, 1.0) is None  # no context: they are the sentence's
    own = replace(SURE, words=[*lead, Word(2.1, 2.6, "Hello", ".", " Hello.", 0.9)])
    assert better(own, only_context, lead_s=2.0) is own
    assert better(only_context, own, lead_s=2.0) is own


def answer(r: Request, tr: Transcript) -> None:
    r.future.set_running_or_notify_cancel()
    r.future.set_result(tr)


def test_a_recheck_that_comes_back_empty_keeps_the_short_final():
    async def main():
        s = Session(partials=False, final_full_window=False)
        await s.feed(np.concatenate([silence(0.512), speech(1.504), silence(1.6)]))
        (short,) = s.sched.pending(final=True)
        answer(short, replace(SURE, avg_logprob=-0.8))  # unsure: rechecked
        await settle()
        (full,) = s.sched.pending(final=True)
        assert full.options.full_window
        answer(full, EMPTY)
        await s.rec.finish()
        s.rec.close()
        return s

    s = asyncio.run(main())
    assert [r.text for r in s.finals] == ["Hello there."]
    assert s.rec.stats.final_rechecks == 1


def test_a_short_sentence_whose_short_window_words_are_all_context_is_rechecked():
    async def main():
        s = Session(partials=False, final_full_window=False)
        await s.feed(np.concatenate([silence(0.512), speech(2.496), silence(1.6)]))
        (first,) = s.sched.pending(final=True)
        answer(first, replace(SURE, text="The one before.", words=[
            Word(0.3, 1.5, "The", "", " The", 0.9), Word(1.5, 2.9, "one", ".", " one.", 0.9)]))
        await settle()
        await s.feed(np.concatenate([speech(0.992), silence(1.6)]))  # under SHORT_SENTENCE_S
        (short,) = s.sched.pending(final=True)
        dur = short.audio.size / 16000
        assert dur > 2.0  # decoded after context audio (the sentence is ~1.3 s with pre-roll)
        words = [Word(0.0, 0.3, "before", "", " before", 0.9), Word(0.3, 0.6, "it", ".", " it.", 0.9)]
        answer(short, replace(SURE, text="before it.", words=words))
        await settle()
        (full,) = s.sched.pending(final=True)
        assert full.options.full_window and np.array_equal(full.audio, short.audio)
        answer(full, replace(SURE, text="Yes.", words=[Word(dur - 0.8, dur - 0.2, "Yes", ".",
                                                            " Yes.", 0.9)]))
        await s.rec.finish()
        s.rec.close()
        return s

    s = asyncio.run(main())
    assert [r.text for r in s.finals] == ["The one.", "Yes."]


def test_a_vocabulary_prompted_short_final_does_not_outvote_an_empty_full_window():
    """With hot words in the prompt, the short window's words over an empty full window are the
    prompt's invention ("新冠。" on a 1 s piece, tests/hardening/test_short_segments.py)."""
    short = replace(SURE, text="新冠。", words=[Word(0.1, 0.6, "新冠", "。", "新冠。", 0.6)],
                    language="zh", avg_logprob=-0.5)
    empty = replace(EMPTY, language="zh")
    assert better(short, empty, prompted=True) is empty
    assert better(short, empty) is short
