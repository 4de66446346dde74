"""Which Whisper tokens a translate-task decode may not write: those that start a CJK character.

Whisper's translate task writes English, but on Mandarin it sometimes leaves a word untranslated
("... brought my body to健康", zh_paddlespeech_zh in 10 of 64 window cuts tried). A translation
with Han characters in it is not what a DashScope user asked for, so such tokens are suppressed in
that task and the decoder picks its best English word instead. Pure: token strings in, ids out.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

# UTF-8 lead bytes of U+3000-U+DFFF: CJK punctuation, kana, CJK ideographs, Yi, Hangul. Suppressing
# every token holding one of them leaves a decoder no way to start such a character, while Latin
# accents (2-byte lead bytes) and typographic quotes and dashes (lead byte 0xE2) stay writable.
_CJK_LEADS = frozenset(range(0xE3, 0xEE))


@lru_cache(maxsize=1)
def _byte_of_char() -> dict[str, int]:
    """The byte-level BPE alphabet (GPT-2's bytes_to_unicode, which Whisper's tokenizer uses)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def cjk_token_ids(vocab: Iterable[tuple[str, int]]) -> list[int]:
    """Ids of the tokens (byte-level strings, as `tokenizers`' get_vocab gives them) that contain
    the first byte of a CJK, kana or Hangul character."""
    alphabet = _byte_of_char()
    return sorted(i for token, i in vocab
                  if not token.startswith("<|")
                  and any(alphabet.get(c, -1) in _CJK_LEADS for c in token))
