"""The translate task's suppressed tokens: every token that starts a CJK, kana or Hangul character,
none that an English sentence needs (model-free: byte-level token strings as the tokenizer keeps
them)."""

from __future__ import annotations

from voxscope.engine.english_only import _byte_of_char, cjk_token_ids


def _token(text: str) -> str:
    """`text` as a byte-level BPE token string (GPT-2's alphabet)."""
    char_of = {b: c for c, b in _byte_of_char().items()}
    return "".join(char_of[b] for b in text.encode())


def test_tokens_that_start_cjk_characters_are_suppressed():
    vocab = {_token(t): i for i, t in enumerate(
        ["健康", " health", "café", " —", "“", "こんにちは", " 안녕", "。", "'s", "Ñ", "€"])}
    vocab["<|zh|>"] = 99
    partial = _token("健")[:2]  # the lead byte and one more: half a character, still its start
    vocab[partial] = 50
    tail = _token("健")[1:]  # continuation bytes only, also used by Latin accents' second byte
    vocab[tail] = 51
    assert cjk_token_ids(vocab.items()) == [0, 5, 6, 7, 50]
