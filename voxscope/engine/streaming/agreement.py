"""Preview agreement for one sentence: the prefix two successive previews agree on stops changing.

Like whisper_streaming's `HypothesisBuffer` (local agreement of two hypotheses), over text: each
preview is `insert`ed; what it shares with the previous one (at a word boundary, or a character for
CJK) becomes `committed`, which only ever grows. The recognizer forces `committed` as the prefix of
the next preview decode and reports its length as the result's stable characters; the rest of a
preview is the replaceable `tail`. Pure: no model, no audio, no asyncio.
"""

from __future__ import annotations


class PreviewAgreement:
    def __init__(self) -> None:
        self.committed = ""  # agreed by two successive previews: no longer changes
        self.previous = ""  # the last preview inserted

    def insert(self, hypothesis: str, *, cjk: bool) -> int:
        """Take a new preview text; return how many of its leading characters are committed."""
        text = hypothesis.strip()
        agreed = common_prefix(self.previous, text, cjk=cjk)
        # A hypothesis that rewrites the committed start (the model ignored the forced prefix)
        # commits nothing new: the committed text never shrinks or changes.
        if len(agreed) > len(self.committed) and agreed.startswith(self.committed):
            self.committed = agreed
        self.previous = text
        return self.stable_chars(text)

    def stable_chars(self, text: str) -> int:
        return len(self.committed) if text.startswith(self.committed) else 0

    @property
    def prefix(self) -> str | None:
        """Text to force at the start of the next preview decode, None before any agreement."""
        return self.committed or None

    @property
    def tail(self) -> str:
        """The part of the last preview that may still change."""
        if self.previous.startswith(self.committed):
            return self.previous[len(self.committed):].strip()
        return self.previous


def common_prefix(a: str, b: str, *, cjk: bool) -> str:
    """The agreed start of two hypotheses; outside CJK it ends at a word boundary (a half-agreed
    word is not agreed)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    prefix = a[:n]
    if not cjk and n < min(len(a), len(b)):
        cut = prefix.rfind(" ")
        prefix = prefix[:cut] if cut > 0 else ""
    return prefix.rstrip()
