"""Text post-processing applied to finished transcripts: script conversion, fillers, punctuation."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from voxscope.engine.types import Word

SENTENCE_END = ".。!！?？"
# Punctuation Whisper attaches to words; faster-whisper's own defaults.
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、;；…"

# Filler words removed when disfluency_removal_enabled is set. Only pure hesitation sounds: words
# such as "like" or 那个 carry meaning too often to be dropped blindly.
FILLERS = {
    "en": {"um", "umm", "uh", "uhh", "uh-huh", "er", "erm", "ah", "hmm", "hm", "mm", "mhm"},
    "zh": {"嗯", "呃", "额", "唔", "嗯嗯", "呃呃"},
    "ja": {"えー", "えーと", "あのー", "ええと", "えっと", "うーん"},
}
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_FULL_WIDTH = str.maketrans({",": "，", ".": "。", "?": "？", "!": "！", ":": "：", ";": "；"})
CJK_LANGS = {"zh", "ja", "yue", "ko", "th", "lo", "my"}


@lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC  # opencc-python-reimplemented: pure Python, dictionaries included

    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def split_trailing_punctuation(raw: str) -> tuple[str, str]:
    """' Americans,' -> ('Americans', ','): DashScope words carry punctuation separately."""
    text = raw.strip()
    i = len(text)
    while i > 0 and is_punctuation(text[i - 1]) and text[i - 1] not in "'-":
        i -= 1
    core, punct = text[:i], text[i:]
    if not core:  # a word made only of punctuation stays as text so nothing is lost
        return text, ""
    return core, punct


def strip_punctuation(text: str) -> str:
    return "".join(ch for ch in text if not is_punctuation(ch) or ch in "'-")


def join_words(words: list[Word], language: str | None) -> str:
    text = "".join(w.raw for w in words).strip()
    return re.sub(r"\s+", " ", text)


def finalize_words(words: list[Word], language: str | None, *, simplified: bool,
                   remove_fillers: bool, punctuation: bool) -> list[Word]:
    """Apply the per-request text options to aligned words, keeping their times."""
    out: list[Word] = []
    fillers = FILLERS.get(language or "", set())
    for w in words:
        raw = w.raw
        if simplified and language in ("zh", "yue"):
            raw = to_simplified(raw)
        core, punct = split_trailing_punctuation(raw)
        if punct and language in ("zh", "yue", "ja") and core and _CJK_CHAR.match(core[-1]):
            # after Chinese characters, punctuation is full-width (Whisper sometimes writes ",")
            full = punct.translate(_FULL_WIDTH)
            raw, punct = raw[: len(raw) - len(punct)] + full, full
        if remove_fillers and core.lower().strip(" ,.") in fillers:
            # Keep sentence-final punctuation of a dropped filler on the previous word.
            if out and punct and any(c in SENTENCE_END for c in punct):
                prev = out[-1]
                out[-1] = Word(prev.start, prev.end, prev.text, prev.punctuation + punct,
                               prev.raw + punct, prev.probability)
            continue
        if not punctuation:
            core = strip_punctuation(core) or core
            punct = ""
            lead = raw[: len(raw) - len(raw.lstrip())]
            raw = lead + core
        out.append(Word(w.start, w.end, core, punct, raw, w.probability))
    return out


def close_sentence(words: list[Word], language: str | None) -> list[Word]:
    """Make the last word end the sentence (Whisper often leaves Chinese sentences unterminated,
    DashScope's finals always end with sentence punctuation). A trailing comma is replaced."""
    if not words or any(c in SENTENCE_END for c in words[-1].punctuation):
        return words
    last = words[-1]
    # by the script of the word: a window detected as Chinese may still end in English words
    mark = "。" if is_cjk(language) and not last.text.isascii() else "."
    punct = last.punctuation.rstrip(",，、;；:：") + mark
    raw = last.raw[: len(last.raw) - len(last.punctuation)] + punct if last.punctuation else last.raw + mark
    return [*words[:-1], Word(last.start, last.end, last.text, punct, raw, last.probability)]


def ends_sentence(text: str) -> bool:
    text = text.rstrip()
    return bool(text) and text[-1] in SENTENCE_END


def is_cjk(language: str | None) -> bool:
    return (language or "") in CJK_LANGS


def letters(text: str) -> str:
    """What a transcript says, for comparing two: letters and digits only, lower case."""
    return "".join(ch for ch in text.lower() if ch.isalnum())
