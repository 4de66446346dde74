"""Result building for streaming sessions: decoded words in, `SentenceResult`s out.

Pure functions over `Word`s: the per-request text options (simplified Chinese, fillers,
punctuation, hot words), context-audio words dropped from a short sentence's final, translations,
and the result values the recognizer hands to the protocols. No audio, no model, no asyncio.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from voxscope.engine.hotwords import Hotword, apply_hotwords
from voxscope.engine.text import SENTENCE_END, close_sentence, finalize_words
from voxscope.engine.types import Word


@dataclass
class ResultWord:
    begin_ms: int
    end_ms: int
    text: str
    punctuation: str


@dataclass
class SentenceResult:
    sentence_id: int
    begin_ms: int
    end_ms: int | None  # None while partial
    current_ms: int  # how far the audio behind this result reaches
    text: str
    words: list[ResultWord]
    final: bool
    language: str | None
    stable_chars: int = 0  # leading characters of `text` that no longer change (partials)
    segment: int = 0  # the VAD segment this result belongs to (see recognizer.Boundary)
    translations: dict[str, Translation] = field(default_factory=dict)  # finals, when asked for


@dataclass
class Translation:
    text: str
    words: list[ResultWord]

OWN_WORD_END_S = 0.1  # a word of the sentence before ends by the context's end



def sentence_words(words: list[Word], offset_s: float, language: str | None, *,
                   remove_fillers: bool, punctuation: bool,
                   hotwords: tuple[Hotword, ...]) -> list[Word]:
    """Decoded words moved to stream time, with the request's text options and hot words applied."""
    out = finalize_words([w.shifted(offset_s) for w in words], language, simplified=True,
                         remove_fillers=remove_fillers, punctuation=punctuation)
    return apply_hotwords(out, hotwords)


def own_words(words: list[Word], lead_s: float) -> list[Word]:
    """The words of a final decoded after `lead_s` of context audio that belong to the sentence.

    Words of the context audio belong to the sentence before (already delivered); a sentence
    decoded as the middle of another gets its capital back, since on its own it starts one.
    Whisper's alignment gives the silence before a word to that word: after silent context the
    sentence's first word starts where the window does ("Ever" 0.0-2.72 s, spoken from 2.3 s), so
    its middle lies in the context. A word ending OWN_WORD_END_S past the context is the
    sentence's: the sentence before ended before the context did.
    """
    own = [w if w.start >= lead_s else replace(w, start=lead_s)  # its silence was the context's
           for w in words if (w.start + w.end) / 2 >= lead_s or w.end >= lead_s + OWN_WORD_END_S]
    if lead_s and own and own[0].text[:1].islower() and own[0].text[:1].upper() != own[0].text[:1]:
        first = own[0]
        cap = first.text[:1].upper() + first.text[1:]
        own[0] = replace(first, text=cap, raw=first.raw.replace(first.text, cap, 1))
    return own


def english_words(words: list[Word], offset_s: float) -> list[Word]:
    """Words of a translate-task decode (always English), moved to stream time."""
    return finalize_words([w.shifted(offset_s) for w in words], "en", simplified=False,
                          remove_fillers=False, punctuation=True)


def final_translation(words: list[Word], offset_s: float) -> Translation:
    """The translation attached to a final: a closed English sentence."""
    out = english_words(words, offset_s)
    if out:
        out = close_sentence(out, "en")
    return Translation(text_of(out), [result_word(w) for w in out])


def final_result(sid: int, group: list[Word], *, start_ms: int, end_ms: int | None,
                 language: str | None, segment: int,
                 translations: dict[str, Translation]) -> SentenceResult:
    """A final for `group` (words in stream time) of a sentence spanning [start_ms, end_ms]
    (`end_ms` None: not known).

    Its times come from the words, kept inside the sentence and never empty.
    """
    begin = max(int(group[0].start * 1000), start_ms)
    end = max(int(group[-1].end * 1000), begin + 1)
    end = min(end, end_ms) if end_ms is not None else end
    end = max(end, begin + 1)
    return SentenceResult(
        sentence_id=sid, begin_ms=begin, end_ms=end, current_ms=end_ms or 0,
        text=text_of(group), words=[result_word(w) for w in group], final=True,
        language=language, stable_chars=0, segment=segment, translations=translations)


def latin_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    return sum(ch.isascii() for ch in letters) / len(letters) if letters else 0.0


def text_of(words: list[Word]) -> str:
    return " ".join("".join(w.raw for w in words).split())


def result_word(w: Word) -> ResultWord:
    return ResultWord(int(round(w.start * 1000)), int(round(w.end * 1000)), w.text, w.punctuation)


def split_sentences(words: list[Word]) -> list[list[Word]]:
    """Words cut after each sentence-ending punctuation (semantic punctuation finals)."""
    groups: list[list[Word]] = [[]]
    for w in words:
        groups[-1].append(w)
        if w.punctuation and w.punctuation[-1] in SENTENCE_END:
            groups.append([])
    return [g for g in groups if g]
