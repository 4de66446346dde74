"""Hot words: biasing the decoder towards them and correcting near misses in its output.

Whisper has no shallow-fusion hook, so biasing works in two steps:
1. the words go into the decoder prompt (as previous text), which makes the model prefer their
   spellings when the audio allows it;
2. after decoding, spans of the output that sound like a hot word (same pinyin syllables for
   Chinese, small edit distance for Latin script) are replaced by it. How close a span must be
   depends on the word's weight (1 = prompt only ... 5 = the most eager correction).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pypinyin import lazy_pinyin
from rapidfuzz.distance import Levenshtein

from voxscope.engine.text import CJK_LANGS
from voxscope.engine.types import Word

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LETTERS = re.compile(r"[^0-9a-z\u00c0-\u024f]+")
# Minimum similarity of a span to a hot word before it is replaced, by weight.
_LATIN_THRESHOLD = {2: 0.9, 3: 0.85, 4: 0.75, 5: 0.7}
_CJK_THRESHOLD = {2: 1.0, 3: 0.95, 4: 0.8, 5: 0.75}
_MIN_LATIN_LETTERS = 4  # shorter words only go into the prompt: too many near-misses in speech


@dataclass(frozen=True)
class Hotword:
    text: str
    weight: int = 4
    lang: str | None = None

    @property
    def cjk(self) -> bool:
        return bool(_CJK.search(self.text))


def hotwords_from(entries: Iterable[dict]) -> tuple[Hotword, ...]:
    """Hot words from stored vocabulary entries (`{text, weight, lang}`)."""
    return tuple(Hotword(e["text"], int(e.get("weight", 4)), e.get("lang")) for e in entries)


def hotwords_for(hotwords: tuple[Hotword, ...], language: str | None) -> tuple[Hotword, ...]:
    """The hot words worth prompting for speech in `language`: those whose `lang` says so, or
    (without `lang`) whose script fits it. Prompting Chinese speech with English words (or the
    reverse) makes Whisper drift (希望 heard as 洗澡 on a real clip); correction still applies to
    every word."""
    cjk_speech = language in CJK_LANGS

    def fits(h: Hotword) -> bool:
        if h.lang and language:
            return h.lang == language
        return h.cjk == cjk_speech

    return tuple(h for h in hotwords if fits(h))


def decoder_prompt(hotwords: tuple[Hotword, ...], context: str | None) -> str | None:
    """The decoder's previous-text prompt: the hot words (heaviest first), then any context."""
    if not hotwords:
        return context
    ordered = sorted(hotwords, key=lambda h: -h.weight)
    cjk = [h.text for h in ordered if h.cjk]
    latin = [h.text for h in ordered if not h.cjk]
    parts = []
    if cjk:
        parts.append("，".join(cjk) + "。")
    if latin:
        parts.append(", ".join(latin) + ".")
    if context and context.strip():
        parts.append(context.strip())
    return " ".join(parts)


def apply_hotwords(words: list[Word], hotwords: tuple[Hotword, ...]) -> list[Word]:
    """Replace spans of `words` that sound like a hot word by the hot word, keeping timings."""
    for hw in sorted(hotwords, key=lambda h: -len(h.text)):
        if hw.weight < 2 or not words:
            continue
        words = _correct_cjk(words, hw) if hw.cjk else _correct_latin(words, hw)
    return words


def _with_text(w: Word, text: str) -> Word:
    lead = w.raw[: len(w.raw) - len(w.raw.lstrip())]
    return Word(w.start, w.end, text, w.punctuation, lead + text + w.punctuation, w.probability)


def _syllable_similarity(a: list[str], b: list[str]) -> float:
    return sum(Levenshtein.normalized_similarity(x, y) for x, y in zip(a, b, strict=True)) / len(b)


def _correct_cjk(words: list[Word], hw: Hotword) -> list[Word]:
    target = hw.text.replace(" ", "")
    n = len(target)
    threshold = _CJK_THRESHOLD.get(min(hw.weight, 5), 1.0)
    # One entry per character of the words' text: (word index, position in the word).
    where = [(i, j) for i, w in enumerate(words) for j in range(len(w.text))]
    text = "".join(w.text for w in words)
    if n == 0 or len(text) < n:
        return words
    target_py = lazy_pinyin(target)
    if len(target_py) != n:
        return words  # mixed script hot word: prompt only
    chars = [list(w.text) for w in words]
    i = 0
    changed = False
    while i + n <= len(text):
        window = text[i:i + n]
        span_words = {where[k][0] for k in range(i, i + n)}
        # a span must not run across punctuation (other than after its last character)
        crosses = any(words[wi].punctuation for wi in span_words if wi != where[i + n - 1][0])
        if window != target and not crosses and all(_CJK.match(c) for c in window):
            py = lazy_pinyin(window)
            if len(py) == n and _syllable_similarity(py, target_py) >= threshold:
                for k in range(n):
                    wi, pos = where[i + k]
                    chars[wi][pos] = target[k]
                changed = True
                i += n
                continue
        i += 1
    if not changed:
        return words
    return [_with_text(w, "".join(c)) if "".join(c) != w.text else w for w, c in zip(words, chars,
                                                                                   strict=True)]


def _letters(text: str) -> str:
    return _LETTERS.sub("", text.lower())


def _correct_latin(words: list[Word], hw: Hotword) -> list[Word]:
    tokens = hw.text.split()
    key = _letters(hw.text)
    if len(key) < _MIN_LATIN_LETTERS:
        return _fix_case(words, hw, tokens)
    threshold = _LATIN_THRESHOLD.get(min(hw.weight, 5), 1.0)
    n = len(tokens)
    out: list[Word] = []
    i = 0
    while i < len(words):
        best: tuple[float, int] | None = None
        for k in sorted({n, n + 1, max(n - 1, 1)}):
            span = words[i:i + k]
            if len(span) < k or any(w.punctuation for w in span[:-1]):
                continue
            span_key = _letters("".join(w.text for w in span))
            if not span_key or span_key[0] != key[0]:
                continue  # the first sound must agree: keeps common words from being taken
            sim = Levenshtein.normalized_similarity(span_key, key)
            if sim >= threshold and (best is None or sim > best[0]):
                best = (sim, k)
        if best is None:
            out.append(words[i])
            i += 1
            continue
        span = words[i:i + best[1]]
        out.extend(_respan(span, tokens))
        i += best[1]
    return out


def _respan(span: list[Word], tokens: list[str]) -> list[Word]:
    """`tokens` in place of `span`: one-to-one timings when the counts agree, else spread evenly."""
    lead = span[0].raw[: len(span[0].raw) - len(span[0].raw.lstrip())] or " "
    punct = span[-1].punctuation
    prob = min(w.probability for w in span)
    if len(span) == len(tokens):
        times = [(w.start, w.end) for w in span]
    else:
        start, end = span[0].start, span[-1].end
        step = (end - start) / len(tokens)
        times = [(start + k * step, start + (k + 1) * step) for k in range(len(tokens))]
    out = []
    for k, (tok, (a, b)) in enumerate(zip(tokens, times, strict=True)):
        p = punct if k == len(tokens) - 1 else ""
        out.append(Word(a, b, tok, p, (lead if k == 0 else " ") + tok + p, prob))
    return out


def _fix_case(words: list[Word], hw: Hotword, tokens: list[str]) -> list[Word]:
    if len(tokens) != 1:
        return words
    low = hw.text.lower()
    return [_with_text(w, hw.text) if w.text.lower() == low and w.text != hw.text else w
            for w in words]
