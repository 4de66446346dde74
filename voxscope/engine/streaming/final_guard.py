"""When a realtime final decoded in a short window is redone in Whisper's full 30 s window.

Short windows (`final_window: short`) cost about a third of the CPU at the same or lower error on
the real clips (benchmarks/RESULTS.md, "Final window"), but Whisper was trained on 30 s windows:
a short-window final that looks weak is decoded again in the full window and the better of the two
kept. Pure rules on a Transcript, no model, so they are unit-tested directly.
"""

from __future__ import annotations

from voxscope.engine.types import Transcript

# Clean speech on the real clips decodes at avg_logprob -0.14..-0.57 in short windows; Whisper's
# own fallback starts at -1.0. Between the two a final is unsure enough to be worth a second look.
LOGPROB_FLOOR = -0.7
# Whisper's fallback threshold is 2.4; 2.0 already means repeated phrases in a sentence this short.
COMPRESSION_CEIL = 2.0
# No words on this much VAD speech: the short window lost it (noise and coughs are shorter).
MIN_SPEECH_S = 0.5
# A last word this unsure is how a short window's invented tail looks: en_fleurs_000 cut at the
# sentence's end decodes to "... 25 to 30 years. Bzzzz" (that word 0.26, the rest sure enough
# for avg_logprob -0.07); the full window writes no such word. (The same rule on the first word
# fired 5x as often through the server and fixed nothing: RESULTS, "Final window ... session 6".)
TAIL_WORD_PROB = 0.3


def weak_reason(tr: Transcript, speech_s: float) -> str | None:
    """Why a short-window final should be decoded again in the full window (None: keep it)."""
    if tr.empty:
        return "empty" if speech_s >= MIN_SPEECH_S else None
    if tr.temperature > 0:
        return "fallback"  # beam search degenerated and sampling was needed
    if tr.compression_ratio > COMPRESSION_CEIL:
        return "compression"
    if tr.avg_logprob < LOGPROB_FLOOR:
        return "logprob"
    if tr.words and tr.words[-1].probability < TAIL_WORD_PROB:
        return "tail"
    return None


def _degenerate(tr: Transcript) -> bool:
    return tr.temperature > 0 or tr.compression_ratio > COMPRESSION_CEIL


def better(short: Transcript, full: Transcript | None) -> Transcript:
    """The one to keep once a short-window final looked weak: the full window's, which is how
    Whisper (and plain faster-whisper) decodes, words or none, unless it degenerated (a fallback,
    a repetition) where the short one did not. Not the surer of the two: the invented tail above
    comes with a higher avg_logprob (-0.07) than the full window's correct text (-0.32)."""
    if full is None:
        return short
    if _degenerate(full) and not _degenerate(short):
        return short
    return full
