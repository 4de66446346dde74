"""A short-window final whose first words differ from the previews is decoded in the full window.

Model-free (issue 12, Streams): the rule (`final_guard.disagrees_with_preview`) on texts, and the
driver with test_recognizer_driver's scripted VAD and scheduler stand-in: previews agree on
"Ever tried", the short-window final says "Never tried." (Beckett's near-tie, RESULTS.md "Short
finals and first partials at 4 streams (session 8)"), so the same audio is decoded again in the
full window and that text delivered; a final that agrees with its previews is not decoded again.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.engine.test_recognizer_driver import Session, settle, silence, speech
from voxscope.engine.streaming import final_guard
from voxscope.engine.streaming.final_guard import disagrees_with_preview, preview_reason
from voxscope.engine.types import DecodeOptions


@pytest.fixture(autouse=True)
def preview_check(monkeypatch):
    # These sentences are ~1.6 s: with the < 4 s rule on they would be full-window finals already.
    monkeypatch.setattr(final_guard, "SHORT_FINAL_FULL_BELOW_S", 0.0)
    monkeypatch.setattr(final_guard, "PREVIEW_CHECK_WORDS", 3)


def test_the_rule_compares_the_first_words_as_far_as_both_go():
    assert disagrees_with_preview(["Never", "tried."], "Ever tried", cjk=False)
    assert not disagrees_with_preview(["Ever", "tried."], "Ever tried.", cjk=False)  # punctuation
    assert disagrees_with_preview(["A", "severe", "storm's"], "A severe storm", cjk=False)
    assert not disagrees_with_preview(["A", "severe", "storm", "tore"], "A severe storm ripped",
                                      cjk=False)  # only the first three words count
    assert not disagrees_with_preview(["She", "had", "your"], "She", cjk=False)  # preview shorter
    assert disagrees_with_preview(["洗澡", "你"], "希望你以后", cjk=True)
    assert not disagrees_with_preview(["希望", "你"], "希望", cjk=True)
    assert not disagrees_with_preview(["Hello"], "", cjk=False)  # no preview was shown
    assert not disagrees_with_preview(["Never"], "Ever", cjk=False, n=0)  # the rule off


def test_a_short_sentence_nobody_saw_a_preview_of_is_checked_in_the_full_window(monkeypatch):
    monkeypatch.setattr(final_guard, "SHORT_FINAL_FULL_BELOW_S", 4.0)
    assert preview_reason(["Hello"], "", cjk=False, audio_s=3.0) == "unpreviewed"
    assert preview_reason(["Hello"], "", cjk=False, audio_s=9.0) is None  # the short window's own
    assert preview_reason(["Hello"], "Hello", cjk=False, audio_s=3.0) is None
    assert preview_reason(["Hallo"], "Hello", cjk=False, audio_s=9.0) == "preview"
    # a burst: the one preview shown saw the first second of a 3 s sentence
    assert preview_reason(["Due"], "Due", cjk=False, audio_s=3.0, unseen_s=2.0) == "unpreviewed"
    assert preview_reason(["Due"], "Due", cjk=False, audio_s=3.0, unseen_s=0.5) is None
    assert preview_reason(["Due"], "Due", cjk=False, audio_s=9.0, unseen_s=5.0) is None
    # with the check on, the backend no longer decodes short finals in the full window up front
    assert not final_guard.short_final_in_full(16000, DecodeOptions(word_timestamps=True))
    monkeypatch.setattr(final_guard, "PREVIEW_CHECK_WORDS", 0)
    assert preview_reason(["Hallo"], "", cjk=False, audio_s=3.0) is None
    assert final_guard.short_final_in_full(16000, DecodeOptions(word_timestamps=True))


async def sentence(final_text: str, recheck_text: str | None) -> Session:
    s = Session(final_full_window=False, partial_interval_s=0.3)
    await s.feed(speech(1.0))
    for text in ("Ever", "Ever tried", "Ever tried"):
        for r in s.sched.pending(final=False):
            s.sched.resolve(r, text)
        await s.feed(speech(0.3))
    for r in s.sched.pending(final=False):
        s.sched.resolve(r, "Ever tried")
    await s.feed(silence(1.6))
    (short,) = s.sched.pending(final=True)
    assert not short.options.full_window
    s.sched.resolve(short, final_text)
    await settle()
    rechecks = s.sched.pending(final=True)
    if recheck_text is None:
        assert rechecks == []
    else:
        (full,) = rechecks
        assert full.options.full_window and np.array_equal(full.audio, short.audio)
        s.sched.resolve(full, recheck_text)
    await s.rec.finish()
    s.rec.close()
    return s


def test_a_final_that_contradicts_its_previews_is_decoded_in_the_full_window():
    s = asyncio.run(sentence("Never tried.", "Ever tried."))
    assert any(not r.final and r.text.startswith("Ever") for r in s.results)
    assert [r.text for r in s.finals] == ["Ever tried."]
    assert s.rec.stats.final_rechecks == 1


def test_a_final_that_agrees_with_its_previews_is_kept():
    s = asyncio.run(sentence("Ever tried.", None))
    assert [r.text for r in s.finals] == ["Ever tried."]
    assert s.rec.stats.final_rechecks == 0
