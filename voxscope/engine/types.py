"""Typed values the engine exchanges with the rest of voxscope (no protocol or model types here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

# The rate (Hz) of all audio the engine takes and counts in: Whisper's and Silero VAD's.
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Word:
    start: float  # seconds, relative to the decoded window's start (engine) or stream (sessions)
    end: float
    text: str  # the word without trailing punctuation
    punctuation: str  # punctuation that follows the word, "" if none
    raw: str  # the word as the model wrote it, leading space included: joining raws rebuilds text
    probability: float = 1.0

    def shifted(self, offset: float) -> Word:
        return Word(self.start + offset, self.end + offset, self.text, self.punctuation, self.raw,
                    self.probability)


@dataclass
class Transcript:
    text: str
    words: list[Word]
    language: str
    language_probability: float = 0.0
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    tokens: list[int] = field(default_factory=list)  # text tokens (no specials) of the result
    last_time: float = 0.0  # seconds: where the model's last timestamp put the end of its text
    temperature: float = 0.0  # sampling temperature of the kept result (> 0: a fallback decode)

    @property
    def empty(self) -> bool:
        return not self.text.strip()


class Priority(IntEnum):
    FINAL = 0  # realtime sentence results a user waits for: served first
    PARTIAL = 1  # realtime previews: coalesced per stream, the newest replaces older ones
    SYNC = 2  # one-shot requests (multimodal, OpenAI audio): a caller waits
    FILE = 3  # async file-task windows: throughput work, served when nothing above waits


@dataclass(frozen=True)
class DecodeOptions:
    """What one decode should do. Everything a protocol can ask of the model is expressed here."""

    language: str | None = None  # None: detect
    allowed_languages: tuple[str, ...] | None = None  # restricts detection (profile languages)
    task: str = "transcribe"  # or "translate" (to English)
    beam_size: int = 5
    full_window: bool = True  # pad to Whisper's 30 s window (accurate) vs a short window (fast)
    word_timestamps: bool = True
    prefix: str | None = None  # text forced at the start of the output (stable partial prefix)
    prompt: str | None = None  # context fed to the decoder as previous text
    hotwords: tuple = ()  # Hotword entries: added to the prompt when they fit the language
    temperature_fallback: bool = True  # retry with sampling when the output looks degenerate
    # About this many tokens after the prompt at most (None: the model's limit); a generation
    # that stops there is a loop and comes back empty. Previews set it from their audio's length:
    # on a short window greedy decoding sometimes loops ("printing printing ...") to the model's
    # limit, ~1 s of CPU for 0.1 s of work, holding every stream's previews batched with it.
    max_new_tokens: int | None = None
    # With `language` None: the language to keep unless detection is sure of another (a
    # stream's last language for a preview: detection on a second of speech is often wrong).
    language_hint: str | None = None
