"""When a realtime final decoded in a short window is redone in Whisper's full 30 s window.

Short windows (`final_window: short`) cost about a third of the CPU at the same or lower error on
the real clips (benchmarks/RESULTS.md, "Final window"), but Whisper was trained on 30 s windows:
a short-window final that looks weak is decoded again in the full window and the better of the two
kept, and so is one whose first words differ from the previews the user saw (`preview_reason`);
with that check off, a final on a few seconds of audio is decoded in the full window to begin with
(`short_final_in_full`, applied by the backend). Pure rules, no model, so they are unit-tested
directly.
"""

from __future__ import annotations

import os

from voxscope.engine.streaming.results import own_words
from voxscope.engine.text import letters
from voxscope.engine.types import SAMPLE_RATE, DecodeOptions, Transcript

# A realtime final (word timestamps) on less audio than this is decoded in the full 30 s window
# even under `final_window: short`. On a few seconds of audio plus 1 s Whisper, trained on 30 s
# windows, flipped short sentences' first words ("希望" -> "洗澡" on zh_cosyvoice, "storm" ->
# "storm's"); a 20 s minimum window or 0.5 s of leading silence flipped others instead, and only
# the full window is what plain faster-whisper decodes. A final this short is cheap to wait for
# either way; longer ones keep the short window's savings (benchmarks/RESULTS.md, "Short finals as
# the default? (session 7)"). VOXSCOPE_SHORT_FINAL_FULL_BELOW_S: for measurements (0: off).
SHORT_FINAL_FULL_BELOW_S = float(os.environ.get("VOXSCOPE_SHORT_FINAL_FULL_BELOW_S", "4"))


def short_final_in_full(samples: int, opts: DecodeOptions) -> bool:
    """Whether a short-window request is decoded in the full window: a final on less than
    SHORT_FINAL_FULL_BELOW_S of audio (previews stay short: cheap, and soon replaced), unless
    finals are checked against their previews instead (PREVIEW_CHECK_WORDS)."""
    return (opts.word_timestamps and PREVIEW_CHECK_WORDS <= 0
            and samples < SHORT_FINAL_FULL_BELOW_S * SAMPLE_RATE)


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
# VAD heard speech this long after the last word: the short window's text stopped early. A 21 s
# sentence ending "... built around it. And so my fellow Americans" came back without its last
# 2.5 s (its preview had them; the full window writes them: tests/hardening/test_forced_cut.py,
# clips joined, `final_window: short`). Words' ends are ±0.2 s and VAD's speech end has its hangover.
UNHEARD_SPEECH_S = 1.0


# A phrase of 2-4 words (characters in CJK) this many times in one sentence is Whisper looping on
# its own text, which a short sentence's compression ratio does not show: under load "Try again."
# after "No matter." came back "Try again no matter try again no matter try again." (stop 20's CI,
# tests/hardening/test_realtime_item_order.py); 1.5 compression, sure words.
LOOP_REPEATS = 3


def loops(tr: Transcript, lead_s: float = 0.0) -> bool:
    """Whether the sentence's own words repeat one phrase of 2-4 words (not all the same word)
    LOOP_REPEATS times."""
    words = own_words(tr.words, lead_s) if tr.words else []
    text = " ".join(w.text for w in words) if words else tr.text
    tokens: list[str] = [t for t in (letters(w) for w in text.split()) if t]
    if any("\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" for ch in text):
        tokens = list(letters(text))  # no spaces between CJK words: characters
    for n in (2, 3, 4):
        seen: dict[tuple[str, ...], int] = {}
        for i in range(len(tokens) - n + 1):
            key = tuple(tokens[i:i + n])
            if len(set(key)) == 1:
                continue  # "no, no, no, no": said, not looped
            seen[key] = seen.get(key, 0) + 1
            if seen[key] >= LOOP_REPEATS:
                return True
    return False


def weak_reason(tr: Transcript, speech_s: float, lead_s: float = 0.0) -> str | None:
    """Why a short-window final should be decoded again in the full window (None: keep it).
    `lead_s`: context audio before the sentence in its window; words there are not its own."""
    if _no_words(tr, lead_s):
        return "empty" if speech_s >= MIN_SPEECH_S else None
    if tr.temperature > 0:
        return "fallback"  # beam search degenerated and sampling was needed
    if tr.compression_ratio > COMPRESSION_CEIL:
        return "compression"
    if loops(tr, lead_s):
        return "loop"
    if tr.avg_logprob < LOGPROB_FLOOR:
        return "logprob"
    if tr.words and tr.words[-1].probability < TAIL_WORD_PROB:
        return "tail"
    if tr.words and speech_s - tr.words[-1].end > UNHEARD_SPEECH_S:
        return "unheard"  # (words are timed from the window's start: the sentence's, no lead)
    return None


# A short-window final whose first words differ from the preview text the user already saw is
# decoded again in the full window: the short window's wrong first words are near-ties (p 0.08-0.45
# either way), so a disagreement with the previews, decoded on other windows, is the signal that
# confidence is not (benchmarks/RESULTS.md, "Short finals and first partials at 4 streams
# (session 8)"). How many leading words (characters in CJK) are compared; 0: off.
# VOXSCOPE_PREVIEW_CHECK_WORDS: for measurements.
PREVIEW_CHECK_WORDS = int(os.environ.get("VOXSCOPE_PREVIEW_CHECK_WORDS", "3"))


def disagrees_with_preview(words: list[str], preview: str, *, cjk: bool,
                           n: int | None = None) -> bool:
    """Whether a final's first `n` words (`words`: the sentence's own, in order) say something
    other than the start of `preview` (the agreed preview text, or the last one shown). Only as
    far as both go: a preview that had not reached the second word yet disagrees with nothing
    there."""
    n = PREVIEW_CHECK_WORDS if n is None else n
    if n <= 0 or not preview.strip() or not words:
        return False
    if cjk:
        mine, seen = letters("".join(words))[:n], letters(preview)[:n]
        k = min(len(mine), len(seen))
        return mine[:k] != seen[:k]
    mine_w = [w for w in (letters(w) for w in words[:n]) if w]
    seen_w = [w for w in (letters(w) for w in preview.split()[:n]) if w]
    k = min(len(mine_w), len(seen_w))
    return mine_w[:k] != seen_w[:k]


# A sentence under SHORT_FINAL_FULL_BELOW_S whose last shown preview ended this long before its
# speech did was not seen whole by any preview (audio sent faster than real time: one preview of
# its first second): unchecked, so decoded in the full window as before the check. In a burst
# (`call()`) "Due to the slow communication channels" lost "channels" in a short window
# (tests/hardening/test_final_window_guard.py); at real-time pace the last preview reaches the
# speech end (one is asked for after it, within `partial_interval_s`).
PREVIEW_GAP_S = 1.0


def preview_reason(words: list[str], preview: str, *, cjk: bool, audio_s: float,
                   unseen_s: float = 0.0) -> str | None:
    """Why a short-window final should be decoded again for what its previews showed: its first
    words differ from them, or (a sentence too short to go without a check) no preview saw it
    whole (`unseen_s`: its speech after the last shown preview's audio). None: keep it, or the
    check is off."""
    if PREVIEW_CHECK_WORDS <= 0:
        return None
    if audio_s < SHORT_FINAL_FULL_BELOW_S and (not preview.strip() or unseen_s > PREVIEW_GAP_S):
        return "unpreviewed"
    if not preview.strip():
        return None
    return "preview" if disagrees_with_preview(words, preview, cjk=cjk) else None


def _degenerate(tr: Transcript) -> bool:
    return tr.temperature > 0 or tr.compression_ratio > COMPRESSION_CEIL or loops(tr)


# Whisper's own "this is not speech" line (faster-whisper's log_prob_threshold): a short-window
# final below it that the full window hears as nothing is dropped ("Bzzzz.", -1.1).
HALLUCINATION_LOGPROB = -1.0
# What Whisper writes for noise or silence, from its subtitle training data (letters only, as
# `letters` compares): kept only when the full window agrees there are words.
KNOWN_HALLUCINATIONS = frozenset({
    "you", "thankyou", "thanks", "thankyouforwatching", "thanksforwatching", "bye",
    "pleasesubscribe", "subscribe", "谢谢", "谢谢观看", "谢谢大家", "字幕由amaraorg社区提供",
    "请不吝点赞订阅转发打赏支持明镜与点点栏目", "明镜与点点栏目",
})


def hallucination(tr: Transcript) -> bool:
    """Whether a transcript looks like what Whisper invents for non-speech."""
    return (tr.avg_logprob < HALLUCINATION_LOGPROB or _degenerate(tr)
            or letters(tr.text) in KNOWN_HALLUCINATIONS)


def _no_words(tr: Transcript, lead_s: float) -> bool:
    """No words of the sentence itself (those of the `lead_s` context audio are the one before):
    a final with only those is delivered as nothing, like an empty one."""
    if tr.empty:
        return True
    return bool(lead_s and tr.words) and not own_words(tr.words, lead_s)


def better(short: Transcript, full: Transcript | None, lead_s: float = 0.0, *,
           prompted: bool = False) -> Transcript:
    """The one to keep once a short-window final looked weak: the full window's, which is how
    Whisper (and plain faster-whisper) decodes, unless it degenerated (a fallback, a repetition)
    where the short one did not, or it has no words of the sentence where the short one has some
    that are not a hallucination (`hallucination`). Not the surer of the two: the invented tail
    above comes with a higher avg_logprob (-0.07) than the full window's correct text (-0.32).
    An empty full window is not proof of silence (a sentence after `lead_s` of context): keeping
    it would lose the sentence's only final, and nothing may be lost
    (tests/engine/test_lost_finals.py). Except where a vocabulary prompted the decode
    (`prompted`): there a short window invents words from the prompt's topic (a 1 s Mandarin
    piece with a housing vocabulary: "新冠。" where the full window and the plain decode hear
    nothing, tests/hardening/test_short_segments.py), so the full window's silence stands."""
    if full is None:
        return short
    if _degenerate(full) and not _degenerate(short):
        return short
    if (_no_words(full, lead_s) and not _no_words(short, lead_s)
            and not prompted and not hallucination(short)):
        return short
    return full
