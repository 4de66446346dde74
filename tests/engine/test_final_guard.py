"""Short-window finals and their guard (issue 12, Streams), without the model.

The rule (`streaming.final_guard`) on Transcripts, and the driver with the scripted VAD and
scheduler stand-in of test_recognizer_driver: a weak short-window final is decoded again in the
full window (same audio, final priority) and the better one delivered; a sound one is not; full
windows are never rechecked. (That the setting reaches the decode: test_recognizer_driver.)
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

from tests.engine.test_recognizer_driver import Request, Session, settle, silence, speech
from voxscope.engine.streaming import final_guard
from voxscope.engine.streaming.final_guard import better, weak_reason
from voxscope.engine.types import Priority, Transcript, Word

SOUND = Transcript("Hello there.", [], "en", 0.99, 0.01, avg_logprob=-0.3, compression_ratio=1.1)


@pytest.fixture(autouse=True)
def short_windows_for_short_sentences(monkeypatch):
    # These sentences are ~2 s: by default the backend decodes such a final in the full window
    # and the guard leaves it (test_short_final_window); here they stand for short-window finals.
    monkeypatch.setattr(final_guard, "SHORT_FINAL_FULL_BELOW_S", 0.0)


def test_weak_reason():
    assert weak_reason(SOUND, 1.5) is None
    assert weak_reason(replace(SOUND, avg_logprob=-0.85), 1.5) == "logprob"
    assert weak_reason(replace(SOUND, temperature=0.2), 1.5) == "fallback"
    assert weak_reason(replace(SOUND, compression_ratio=2.3), 1.5) == "compression"
    assert weak_reason(replace(SOUND, text=" "), 1.5) == "empty"  # VAD heard speech, no words
    assert weak_reason(replace(SOUND, text=""), 0.2) is None  # a cough: nothing lost
    sure, unsure = Word(0, 1, "years", ".", " years.", 0.99), Word(1, 2, "Bzzzz", "", " Bzzzz", 0.26)
    assert weak_reason(replace(SOUND, words=[sure, unsure], avg_logprob=-0.07), 1.5) == "tail"
    assert weak_reason(replace(SOUND, words=[unsure, sure]), 1.5) is None  # only the tail
    # VAD heard 2.5 s of speech after the last word: the short window stopped early
    assert weak_reason(replace(SOUND, words=[sure]), 3.5) == "unheard"
    assert weak_reason(replace(SOUND, words=[sure]), 1.9) is None  # hangover, timing slack


def test_a_looping_short_final_is_weak_and_loses_to_the_full_window():
    # Stop 20's CI: "Try again." after "No matter." (en_beckett, Qwen realtime, loaded machine).
    looped = replace(SOUND, text="Try again no matter try again no matter try again.")
    assert final_guard.loops(looped)
    assert weak_reason(looped, 1.5) == "loop"
    full = replace(SOUND, text="Try again.")
    assert better(looped, full) is full
    assert better(looped, replace(SOUND, text="")) is not looped  # a loop is no sentence to keep
    # Lists and repeated single words are speech, not a loop.
    for text in ("No, no, no, no.", "Ever tried. Ever failed. No matter. Try again.",
                 "one two three four five six", "我认为跑步最重要的就是给我带来了身体健康。"):
        assert not final_guard.loops(replace(SOUND, text=text)), text
    assert final_guard.loops(replace(SOUND, text="谢谢大家谢谢大家谢谢大家"))


def test_better_is_the_full_window_unless_it_degenerated():
    weak = replace(SOUND, avg_logprob=-0.9)
    full = replace(SOUND, text="Hello there, friend.", avg_logprob=-1.2)
    assert better(weak, full) is full  # Whisper's own window, even less sure
    silent = replace(SOUND, text="")
    # Unsure words where Whisper's own window hears none: dropped only below Whisper's own
    # "not speech" logprob, else kept (nothing lost; tests/engine/test_lost_finals.py).
    assert better(replace(weak, avg_logprob=-1.1), silent) is silent
    assert better(weak, silent) is weak
    assert better(silent, SOUND) is SOUND
    assert better(weak, replace(SOUND, compression_ratio=2.6)) is weak  # it looped
    assert better(weak, replace(SOUND, temperature=0.4)) is weak
    fallback = replace(SOUND, temperature=0.4)
    assert better(fallback, replace(SOUND, temperature=0.6)).temperature == 0.6  # both did
    assert better(weak, None) is weak  # the recheck was dropped


def answer(r: Request, text: str, **fields) -> None:
    dur = r.audio.size / 16000
    toks = text.split()
    words = [Word(i * dur / len(toks), (i + 1) * dur / len(toks), t.rstrip("."),
                  t[len(t.rstrip(".")):], " " + t) for i, t in enumerate(toks)]
    r.future.set_running_or_notify_cancel()
    r.future.set_result(replace(SOUND, text=text, words=words, **fields))


async def one_sentence(full_window: bool, first: dict, second: dict | None = None):
    s = Session(partials=False, final_full_window=full_window)
    await s.feed(np.concatenate([silence(0.512), speech(1.504), silence(1.6)]))
    (short,) = s.sched.pending(final=True)
    answer(short, "Hello their.", **first)
    await settle()
    rechecks = s.sched.pending(final=True)
    if second is not None:
        (full,) = rechecks
        answer(full, "Hello there.", **second)
        await settle()
    await s.rec.finish()
    s.rec.close()
    return s, short, rechecks


def test_a_weak_short_final_is_decoded_again_in_the_full_window():
    s, short, rechecks = asyncio.run(one_sentence(False, {"avg_logprob": -0.9},
                                                  {"avg_logprob": -0.4}))
    (full,) = rechecks
    assert not short.options.full_window and full.options.full_window
    assert full.priority == Priority.FINAL and full.options.beam_size == short.options.beam_size
    assert np.array_equal(full.audio, short.audio)  # the same samples, context lead included
    assert [r.text for r in s.finals] == ["Hello there."]
    assert s.rec.stats.final_rechecks == 1


def test_the_short_final_stays_when_the_full_window_loops():
    s, _, _ = asyncio.run(one_sentence(False, {"avg_logprob": -0.9}, {"compression_ratio": 2.6}))
    assert [r.text for r in s.finals] == ["Hello their."] and s.rec.stats.final_rechecks == 1


def test_a_sound_short_final_is_not_rechecked():
    s, _, rechecks = asyncio.run(one_sentence(False, {}))
    assert rechecks == [] and [r.text for r in s.finals] == ["Hello their."]
    assert s.rec.stats.final_rechecks == 0


def test_full_window_finals_are_never_rechecked():
    s, short, rechecks = asyncio.run(one_sentence(True, {"avg_logprob": -0.9}))
    assert short.options.full_window and rechecks == []
    assert [r.text for r in s.finals] == ["Hello their."]


def test_unsure_words_the_full_window_hears_as_silence_are_dropped():
    async def main():
        s = Session(partials=False, final_full_window=False)
        await s.feed(np.concatenate([silence(0.512), speech(1.504), silence(1.6)]))
        (short,) = s.sched.pending(final=True)
        answer(short, "Bzzzz.", avg_logprob=-1.1)
        await settle()
        (full,) = s.sched.pending(final=True)
        full.future.set_running_or_notify_cancel()
        full.future.set_result(replace(SOUND, text="", words=[]))
        await s.rec.finish()
        s.rec.close()
        return s

    s = asyncio.run(main())
    assert s.finals == [] and s.rec.stats.final_rechecks == 1
