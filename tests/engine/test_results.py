"""Result building without the model: decoded words in, sentence results out."""

from __future__ import annotations

from voxscope.engine.hotwords import Hotword
from voxscope.engine.streaming.results import (
    ResultWord,
    final_result,
    final_translation,
    latin_share,
    own_words,
    result_word,
    sentence_words,
    split_sentences,
    text_of,
)
from voxscope.engine.types import Word


def w(text: str, start: float, end: float, punct: str = "", lead: str = " ") -> Word:
    return Word(start, end, text, punct, lead + text + punct)


def test_text_of_joins_the_raw_words():
    assert text_of([w("Hello", 0, 0.5, ","), w("world", 0.5, 1, ".")]) == "Hello, world."
    assert text_of([w("你好", 0, 0.5, "，", ""), w("世界", 0.5, 1, "。", "")]) == "你好，世界。"
    assert text_of([]) == ""


def test_result_word_in_milliseconds():
    assert result_word(w("hi", 1.2344, 1.9996, "!")) == ResultWord(1234, 2000, "hi", "!")


def test_sentence_words_are_moved_to_stream_time_with_the_text_options():
    words = [w("hello", 0.0, 0.4, ","), w("um", 0.4, 0.6, ","), w("there", 0.6, 1.0, ".")]
    out = sentence_words(words, 10.0, "en", remove_fillers=True, punctuation=False, hotwords=())
    assert [(x.text, x.start, x.end, x.punctuation) for x in out] == [
        ("hello", 10.0, 10.4, ""), ("there", 10.6, 11.0, "")]
    zh = sentence_words([w("這個", 0, 1, "", "")], 0.0, "zh", remove_fillers=False, punctuation=True,
                        hotwords=())
    assert text_of(zh) == "这个"  # simplified Chinese


def test_sentence_words_apply_hot_words():
    out = sentence_words([w("voxscoap", 0, 1, ".")], 0.0, "en", remove_fillers=False,
                         punctuation=True, hotwords=(Hotword("voxscope", 4, "en"),))
    assert text_of(out) == "voxscope."


def test_own_words_drop_the_context_audio_and_restore_the_capital():
    words = [w("before", 0.0, 1.8), w("ever", 1.9, 2.4), w("failed", 2.4, 3.0, ".")]
    own = own_words(words, 2.0)  # "ever" is mostly after the context
    assert [x.text for x in own] == ["Ever", "failed"] and own[0].raw == " Ever"
    assert [x.text for x in own_words(words, 0.0)] == ["before", "ever", "failed"]  # no context: as is
    assert own_words([w("42", 2.1, 2.5)], 2.0)[0].text == "42"


def test_own_words_keep_a_first_word_stretched_over_silent_context():
    # Measured: 2 s of silence + 0.3 s pre-roll + "Ever tried." decoded as one window; the
    # alignment gives the silence to "Ever". It ended in "Tried." before.
    words = [w("Ever", 0.0, 2.72), w("tried", 2.72, 3.18, ".")]
    own = own_words(words, 2.0)
    assert [x.text for x in own] == ["Ever", "tried"]
    assert own[0].start == 2.0  # it starts with the sentence, not inside the context
    # the sentence before still goes: its last word ends by the end of the context
    before = [w("before", 0.0, 1.96, "."), w("ever", 1.96, 2.6), w("failed", 2.6, 3.0, ".")]
    assert [x.text for x in own_words(before, 2.0)] == ["Ever", "failed"]


def test_final_result_keeps_its_times_inside_the_sentence():
    group = [w("hello", 0.95, 1.5), w("there", 1.5, 2.6, ".")]
    r = final_result(7, group, start_ms=1000, end_ms=2500, language="en", segment=3,
                     translations={})
    assert (r.sentence_id, r.begin_ms, r.end_ms, r.current_ms) == (7, 1000, 2500, 2500)
    assert r.final and r.text == "hello there." and r.segment == 3 and r.stable_chars == 0
    assert [x.begin_ms for x in r.words] == [950, 1500]  # words keep their own times
    # never empty, even if the words end before the sentence starts
    r = final_result(1, [w("x", 0.1, 0.2)], start_ms=500, end_ms=400, language="en", segment=1,
                     translations={})
    assert r.begin_ms == 500 and r.end_ms == 501
    r = final_result(1, group, start_ms=0, end_ms=None, language="en", segment=1, translations={})
    assert r.end_ms == 2600


def test_split_sentences_after_sentence_punctuation():
    words = [w("One", 0, 1, "."), w("two", 1, 2, ","), w("three", 2, 3, "?"), w("four", 3, 4)]
    assert [[x.text for x in g] for g in split_sentences(words)] == [
        ["One"], ["two", "three"], ["four"]]
    assert split_sentences([]) == []


def test_final_translation_is_a_closed_english_sentence():
    t = final_translation([w("Good", 0.0, 0.5), w("morning", 0.5, 1.0, ",")], 2.0)
    assert t.text == "Good morning." and t.words[0].begin_ms == 2000
    assert final_translation([], 0.0).text == ""


def test_latin_share_tells_a_translation_from_an_echo():
    assert latin_share("Hello world") == 1.0
    assert latin_share("你好 world") < 0.9
    assert latin_share("123 ...") == 0.0
