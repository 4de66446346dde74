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
    return None


def _rank(tr: Transcript) -> tuple[bool, bool, float]:
    return (tr.temperature == 0, tr.compression_ratio <= COMPRESSION_CEIL, tr.avg_logprob)


def better(short: Transcript, full: Transcript | None) -> Transcript:
    """The one to keep. Words over none when the short window lost them; but when the short
    window wrote words it was unsure of and the full window, Whisper's own, hears no speech there,
    none (a short window on noise writes things like "Bzzzz."). Otherwise no fallback, no
    repetition, then the surer; a tie keeps the short one."""
    if full is None:
        return short
    if short.empty or full.empty:
        return full
    return full if _rank(full) > _rank(short) else short
