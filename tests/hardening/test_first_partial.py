"""What brings a sentence's first partial sooner (issue 12, First partial), checked by order and
content, never by time:

- a preview's decode is capped in tokens by its audio's length (a greedy loop on a short window ran
  to the model's 448 tokens: ~1 s for a first preview instead of ~0.1 s), and the cap does not
  change what a preview says;
- a preview that came back empty before any was shown is asked for again after a little more
  audio, not a whole preview interval later;
- a preview held back because the previous sentence's final was not out yet goes out right after
  that final, not with the next preview.

The driver parts run without the model (tests/engine/test_recognizer_driver.py's fakes); the cap
runs the real model in-process.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.engine.test_recognizer_driver import Session, settle, silence, speech
from tests.support import clip_pcm
from voxscope.engine.model_store import ModelStore
from voxscope.engine.recognizer import (
    LANGUAGE_CHECK_S,
    PREVIEW_MIN_TOKENS,
    PREVIEW_TOKENS_PER_S,
    RETRY_INTERVAL_S,
)
from voxscope.engine.types import DecodeOptions, Priority, Transcript, Word
from voxscope.engine.whisper_backend import WhisperBackend

SR = 16000


def previews(s: Session) -> list:
    return [r for r in s.sched.requests if r.priority == Priority.PARTIAL]


def test_previews_are_capped_by_their_audio_finals_are_not():
    async def main() -> None:
        s = Session(max_sentence_silence_ms=600)
        await s.feed(np.concatenate([silence(0.512), speech(2.0)]))
        first, *later = previews(s)
        assert later, "a second preview once the interval passed"
        for r in (first, later[-1]):
            seconds = r.audio.size / SR
            assert r.options.max_new_tokens == PREVIEW_MIN_TOKENS + int(PREVIEW_TOKENS_PER_S
                                                                        * seconds)
        assert later[-1].options.max_new_tokens > first.options.max_new_tokens
        await s.feed(silence(1.0))
        # (a queued preview promoted to final priority keeps its cap: it is still a preview)
        finals = [r for r in s.sched.requests if r.final and r.options.beam_size > 1]
        assert finals and all(r.options.max_new_tokens is None for r in finals)
        s.rec.close()

    asyncio.run(main())


def test_an_empty_first_preview_is_asked_for_again_soon():
    async def main() -> None:
        s = Session(partial_interval_s=0.6)
        await s.feed(np.concatenate([silence(0.512), speech(0.5)]))
        (first,) = previews(s)
        s.sched.resolve(first, "")  # Whisper heard too little: nothing to show
        await settle()
        assert s.results == []
        # A little more speech, well under the preview interval: the next preview is asked for.
        await s.feed(speech(RETRY_INTERVAL_S + 0.1))
        assert len(previews(s)) == 2
        second = previews(s)[1]
        s.sched.resolve(second, "She had")
        await settle()
        assert [(r.final, r.text) for r in s.results] == [(False, "She had")]
        # Once something is shown, previews come at the interval again.
        await s.feed(speech(RETRY_INTERVAL_S + 0.1))
        assert len(previews(s)) == 2
        s.rec.close()

    asyncio.run(main())


def test_a_preview_held_for_the_previous_final_goes_out_right_after_it():
    async def main() -> None:
        s = Session(max_sentence_silence_ms=600, partial_interval_s=0.3)
        await s.feed(speech(1.5))
        for r in s.sched.pending(final=False):
            s.sched.resolve(r, "first")
        await s.feed(silence(1.0))  # sentence 1 closes; its final is not answered yet
        await s.feed(speech(1.0))
        held = s.sched.pending(final=False)
        assert held
        for r in held:
            s.sched.resolve(r, "second sentence")
        await settle()
        assert all(r.sentence_id == 1 for r in s.results), "sentence 2 overtook sentence 1's final"
        n_previews = len(previews(s))
        for r in s.sched.pending(final=True):
            s.sched.resolve(r, "First sentence.")
        await settle()
        # No more audio and no new preview decode: the held preview itself follows the final.
        assert len(previews(s)) == n_previews
        assert [(r.sentence_id, r.final, r.text) for r in s.results][-2:] == [
            (1, True, "First sentence."), (2, False, "second sentence")]
        s.rec.close()

    asyncio.run(main())


def test_closing_while_a_preview_is_held_keeps_the_final():
    async def main() -> None:
        s = Session(max_sentence_silence_ms=600, partial_interval_s=0.3)
        await s.feed(speech(1.5))
        await s.feed(silence(1.0))
        await s.feed(speech(1.0))
        for r in s.sched.pending(final=False):
            s.sched.resolve(r, "words")
        await settle()
        finals = s.sched.pending(final=True)
        abandon = asyncio.get_running_loop().create_task(s.rec.abandon())
        await settle()
        for r in finals:
            s.sched.resolve(r, "First sentence.")
        await asyncio.wait_for(abandon, 60)
        assert [r.text for r in s.finals] == ["First sentence."]

    asyncio.run(main())


@pytest.fixture(scope="module")
def backend() -> WhisperBackend:
    return WhisperBackend(ModelStore().resolve("whisper-base"))


def test_a_capped_preview_that_loops_says_nothing_others_keep_their_text(backend):
    def audio(clip: str, seconds: float) -> np.ndarray:
        pcm = np.frombuffer(clip_pcm(clip), dtype="<i2").astype(np.float32) / 32768
        return pcm[: int(seconds * SR)]

    def opts(a: np.ndarray, cap: bool) -> DecodeOptions:
        n = PREVIEW_MIN_TOKENS + int(PREVIEW_TOKENS_PER_S * a.size / SR) if cap else None
        return DecodeOptions(language="en", beam_size=1, full_window=False,
                             word_timestamps=False, temperature_fallback=False, max_new_tokens=n)

    # The first 0.8 s of "Printing, in the only sense ..." (speech from 0.06 s): greedy decoding
    # loops ("printing printing ...") until the model's length limit when uncapped; capped it
    # stops early and shows nothing rather than a loop.
    loop = audio("en_ljspeech_LJ001-0001", 0.8)
    free, capped = (backend.decode_batch([(loop, opts(loop, cap))])[0] for cap in (False, True))
    assert free.text.lower().startswith("printing") and len(free.tokens) > 2 * len(capped.tokens)
    assert capped.empty
    # A phrase that ends ("Ever tried.") says the same capped or not.
    phrase = audio("en_beckett", 1.4)
    free, capped = (backend.decode_batch([(phrase, opts(phrase, cap))])[0] for cap in (False, True))
    assert capped.text == free.text and "tried" in capped.text.lower()


def test_min_partial_speech_follows_the_setting():
    # Settings.min_partial_speech_ms reaches the recognizer through Settings.stream_options: the
    # first preview is asked for once that much speech is in (the sentence opens 300 ms before
    # its first voiced frame), not before.
    from voxscope.config import load_settings

    async def first_preview_at(ms: int) -> float:
        s = Session(**load_settings(min_partial_speech_ms=ms).stream_options())
        await s.feed(silence(0.512))
        fed = 0.0
        while not previews(s):
            await s.feed(speech(0.1))
            fed += 0.1
        s.rec.close()
        return round(fed, 1)

    assert asyncio.run(first_preview_at(400)) == 0.5
    assert asyncio.run(first_preview_at(250)) == 0.3


def answer(r, text: str, language: str) -> None:
    """Resolve a fake decode with `text` in `language` (FakeScheduler.resolve says "en")."""
    if not r.future.done() and r.future.set_running_or_notify_cancel():
        words = [Word(0.0, 0.5, w, "", " " + w) for w in text.split()]
        r.future.set_result(Transcript(text, words, language, 0.97, 0.01))


def test_a_sentence_in_another_language_gets_previews_in_it():
    # The stream's last final was English; the next sentence is Mandarin. Its first previews keep
    # English (detection on under a second is unreliable), one preview of a longer window checks
    # the language with English as the hint, and once detection says Mandarin, the previews are
    # Mandarin (before: English, Whisper translating, until the final).
    async def main() -> None:
        s = Session(max_sentence_silence_ms=600, partial_interval_s=0.3)
        await s.feed(np.concatenate([silence(0.512), speech(1.0)]))
        for r in s.sched.pending(final=False):
            answer(r, "Hello there", "en")
        await s.feed(silence(1.0))
        for r in s.sched.pending(final=True):
            answer(r, "Hello there.", "en")
        await s.feed(silence(0.5))
        n = len(previews(s))
        await s.feed(speech(0.6))
        first = previews(s)[n]
        assert (first.options.language, first.options.language_hint) == ("en", None)
        answer(first, "I think", "en")
        await settle()
        while True:
            await s.feed(speech(0.1))
            check = previews(s)[-1]
            if check.options.language is None:
                break
            assert check.audio.size < LANGUAGE_CHECK_S * SR
            answer(check, "I think", "en")
        assert check.options.language_hint == "en" and check.options.prefix is None
        assert check.audio.size >= LANGUAGE_CHECK_S * SR
        answer(check, "我认为", "zh")
        await settle()
        assert s.results[-1].text.replace(" ", "") == "我认为" and not s.results[-1].final
        await s.feed(speech(0.6))  # past the preview interval (0.45 s: it backs off)
        later = previews(s)[-1]
        assert later is not check and later.options.language == "zh"
        s.rec.close()

    asyncio.run(main())


class StubDetector:
    def __init__(self, ranked: list[tuple[str, float]]) -> None:
        self.ranked = [(f"<|{code}|>", p) for code, p in ranked]

    def detect_language(self, enc):
        return [self.ranked]


@pytest.mark.parametrize("ranked, expected", [
    ([("zh", 0.97), ("en", 0.01)], ("zh", 0.97)),  # clearly another language: detection wins
    ([("ja", 0.26), ("en", 0.19)], ("en", 0.19)),  # a guess: the hint stays
    ([("en", 0.63), ("tl", 0.12)], ("en", 0.63)),
])
def test_detection_overrides_a_language_hint_only_when_sure(ranked, expected):
    be = object.__new__(WhisperBackend)
    be.multilingual, be._model = True, StubDetector(ranked)  # type: ignore[assignment]
    langs, probs = be._languages(None, [DecodeOptions(language=None, language_hint="en")])
    assert (langs[0], probs[0]) == expected


def test_a_language_guessed_from_under_a_second_is_not_shown():
    # No language given or carried over: a short first preview detects it. Whisper's guess on
    # the first second of en_ldc93s1 was Mandarin at 0.75 ("心情"), and showing it locked the
    # sentence's previews to Mandarin (tests/protocols/test_inference_sdk.py::test_row22).
    async def main() -> None:
        s = Session(partial_interval_s=0.6)
        await s.feed(np.concatenate([silence(0.512), speech(0.5)]))
        (first,) = previews(s)
        assert first.options.language is None and first.audio.size < LANGUAGE_CHECK_S * SR
        if first.future.set_running_or_notify_cancel():
            first.future.set_result(Transcript("心情", [Word(0.0, 0.5, "心情", "", "心情")], "zh",
                                               0.75, 0.01))
        await settle()
        assert s.results == []
        await s.feed(speech(RETRY_INTERVAL_S + 0.1))  # asked again soon, as for an empty one
        second = previews(s)[1]
        assert second.options.language is None
        answer(second, "She had", "en")  # sure (0.97)
        await settle()
        assert [(r.final, r.text, r.language) for r in s.results] == [(False, "She had", "en")]
        s.rec.close()

    asyncio.run(main())
