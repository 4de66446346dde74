"""Sentence endpointing for a stream: VAD speech probabilities in, sentence boundary events out.

Sans-I/O (like sherpa-onnx's endpointing or uvicorn's protocol parsers): the driver feeds one
(probability, frame start, frame end) at a time, in sample indices, and acts on the returned events;
nothing here decodes, waits or knows the wall clock. The rules:

- a sentence opens after `min_speech_ms` of speech, `preroll_ms` before its first voiced frame
  (never before the previous sentence's end);
- weaker frames (hysteresis) continue speech but don't start it;
- once a pause reaches the speculation delay (the limit itself while the model is busy with
  finals), `Paused` asks for the sentence's final decode up to then (`check`: in semantic
  punctuation mode the driver decodes, looks at the text and answers through
  `semantic_answer`); speech after it makes that decode stale (`Resumed`);
- the pause closes the sentence at `max_sentence_silence_ms` (shorter for long sentences with
  `multi_threshold`; semantic mode only closes on its own after a long silence);
- a sentence reaching `max_sentence_s` (Whisper's 30 s window) is cut at the best pause of its
  last seconds and the speech after the cut continues in a new sentence.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

CUT_SEARCH_S = 8.0  # a forced cut (window full) ends the sentence at the best pause this far back
# While finals keep the model loaded but not full (`finals_loaded`), the speculative final waits
# for this much pause, not `speculative_silence_ms`: most shorter pauses are breaths, each a wasted
# decode, and this still leaves a short-window final (~0.5-0.9 s at 4 streams) time to be ready
# when the pause reaches `max_sentence_silence` (1.3 s). VOXSCOPE_BUSY_SPECULATIVE_SILENCE_MS:
# for measurements.
BUSY_SPECULATIVE_SILENCE_MS = int(os.environ.get("VOXSCOPE_BUSY_SPECULATIVE_SILENCE_MS", "600"))


class EndpointSettings(Protocol):
    """The endpointing fields of a recognizer config (read live: a config may change mid-stream)."""

    vad_threshold: float
    max_sentence_silence_ms: int
    semantic_punctuation: bool
    multi_threshold: bool
    max_sentence_s: float
    preroll_ms: int
    min_speech_ms: int
    speculative_silence_ms: int
    tail_ms: int


@dataclass
class EndpointConfig:
    """Endpoint settings and their defaults (RecognizerConfig extends them)."""

    vad_threshold: float = 0.5
    max_sentence_silence_ms: int = 1300
    semantic_punctuation: bool = False
    multi_threshold: bool = False
    max_sentence_s: float = 29.5
    preroll_ms: int = 300
    min_speech_ms: int = 96
    speculative_silence_ms: int = 240
    tail_ms: int = 200


@dataclass
class Segment:
    """The open sentence as endpointing sees it (sample indices)."""

    index: int  # 1, 2, ... per stream: the VAD segment number
    start: int
    speech_end: int  # end of the last voiced frame
    voiced: bool = True  # the last frame was speech (hysteresis)
    spec_end: int | None = None  # end of the last speculative final asked for
    speculating: bool = False  # that decode is still wanted (no speech since)


@dataclass(frozen=True)
class Opened:
    segment: int
    start: int


@dataclass(frozen=True)
class Paused:
    """A pause began: decode the sentence up to `end` now, the final if the pause ends it."""

    segment: int
    end: int
    speech_end: int
    check: bool  # semantic punctuation: only the text can close it; answer via semantic_answer


@dataclass(frozen=True)
class Resumed:
    """Speech went on after a `Paused`: its decode is stale."""

    segment: int


@dataclass(frozen=True)
class Closed:
    segment: int
    end: int
    reason: str  # "pause", "long_silence" (semantic mode), "semantic", "cut", "end"


Event = Opened | Paused | Resumed | Closed


class Segmenter:
    def __init__(self, config: EndpointSettings, *, sample_rate: int = 16000,
                 frame_samples: int = 512,
                 final_latency_s: Callable[[], float] = lambda: 0.0,
                 finals_busy: Callable[[], bool] = lambda: False,
                 finals_loaded: Callable[[], bool] = lambda: False) -> None:
        self.config = config
        self.sr = sample_rate
        self.frame = frame_samples
        self._final_latency_s = final_latency_s  # how long final decodes take right now
        self._finals_busy = finals_busy  # the model is full with finals: no speculation ahead
        self._finals_loaded = finals_loaded  # loaded with finals: speculation later in the pause
        self.open: Segment | None = None
        self.segments = 0
        self.last_closed_end = 0
        self.last_voice_end: int | None = None  # end of the last frame at or above the threshold
        # The driver's audio extent: a sentence never starts before `audio_start` (trimmed away),
        # and a sentence's length for multi-threshold runs to `audio_end` (the audio fed so far).
        self.audio_start = 0
        self.audio_end = 0
        self.stopped = False  # no new sentences (one-sentence mode done, input abandoned)
        self._run_start: int | None = None
        # (frame start, speech probability) of the last CUT_SEARCH_S: where a forced cut may go
        self._recent: deque[tuple[int, float]] = deque(
            maxlen=int(CUT_SEARCH_S * sample_rate) // frame_samples)

    def ms(self, ms: float) -> int:
        return int(ms * self.sr / 1000)

    # -- input ----------------------------------------------------------------------------------
    def feed(self, p: float, fs: int, fe: int) -> list[Event]:
        """One VAD frame [fs, fe) with speech probability p; frames come in order."""
        cfg = self.config
        thr = cfg.vad_threshold
        if p >= thr:
            self.last_voice_end = fe
        self._recent.append((fs, p))
        s = self.open
        if s is None:
            if p < thr:
                self._run_start = None
                return []
            if self._run_start is None:
                self._run_start = fs
            if fe - self._run_start < self.ms(cfg.min_speech_ms) or self.stopped:
                return []
            start = max(self._run_start - self.ms(cfg.preroll_ms), self.last_closed_end,
                        self.audio_start)
            self._run_start = None
            return [self._open(start, fe)]

        events: list[Event] = []
        neg = max(thr - 0.15, 0.01)  # hysteresis: weaker frames continue speech, don't start it
        if p >= thr or (p >= neg and s.voiced):
            s.speech_end = fe
            s.voiced = True
            if s.speculating and s.spec_end is not None and s.spec_end < fe:
                s.speculating = False
                events.append(Resumed(s.index))
        else:
            s.voiced = False
        silence = fe - s.speech_end
        tail = min(silence, self.ms(cfg.tail_ms))
        # Cheap tests first: the delay may read the model's load (only during a pause).
        if (s.spec_end is None or s.spec_end < s.speech_end) and silence >= min(
                self.ms(cfg.speculative_silence_ms), self.silence_limit(s, fe)) and (
                silence >= self.speculation_delay(s, fe)):
            s.spec_end = s.speech_end + tail
            s.speculating = True
            events.append(Paused(s.index, s.spec_end, s.speech_end, cfg.semantic_punctuation))
        limit = self.silence_limit(s, fe)
        # A speculative final that reached the end of speech is the one to keep.
        end = s.spec_end if s.spec_end and s.spec_end >= s.speech_end else s.speech_end + tail
        if not cfg.semantic_punctuation and silence >= limit:
            events.append(self._close(s, end, "pause"))
        elif cfg.semantic_punctuation and silence >= max(limit * 2, self.ms(3000)):
            # Semantic mode waits for punctuation, but not for ever on a long silence.
            events.append(self._close(s, end, "long_silence"))
        elif fe - s.start >= int(cfg.max_sentence_s * self.sr):
            events.extend(self._force_cut(s, fe))
        return events

    def finish(self, audio_end: int) -> list[Event]:
        """End of audio (after the last frames): close the open sentence after a short tail."""
        s = self.open
        if s is None or self.stopped:
            return []
        return [self._close(s, min(s.speech_end + self.ms(self.config.tail_ms), audio_end), "end")]

    def semantic_answer(self, segment: int, end: int, ends_sentence: bool) -> list[Event]:
        """The driver's verdict on a `Paused(check=True)` decode: close there only if the text
        ends a sentence and nothing happened since (speech, a newer pause, a close)."""
        s = self.open
        if not ends_sentence or s is None or s.index != segment or s.spec_end != end:
            return []
        return [self._close(s, end, "semantic")]

    def stop(self) -> None:
        """Drop the open sentence and open no more (its audio will not be recognised)."""
        self.open = None
        self.stopped = True

    # -- rules ----------------------------------------------------------------------------------
    def silence_limit(self, s: Segment, fe: int) -> int:
        limit = self.config.max_sentence_silence_ms
        if self.config.multi_threshold:
            # Long sentences accept shorter pauses as their end, so they don't run on for ever.
            length_s = (max(self.audio_end, fe) - s.start) / self.sr
            if length_s > 20:
                limit = min(limit, 300)
            elif length_s > 10:
                limit = min(limit, 600)
        return self.ms(limit)

    def speculation_delay(self, s: Segment, fe: int) -> int:
        """Silence after which the final decode starts, before the pause is known to end it.

        Early enough that the result is ready when the pause reaches its limit (judged by how long
        final decodes take right now), but no earlier: every pause that turns out to be a breath
        inside a sentence wastes a full decode, which costs other streams latency. When the model
        is already busy with finals (`finals_busy`), none ahead of the limit: a slow final's
        latency would pull speculation to the floor, where most pauses are breaths, and the
        wasted decodes are what overloads it further (issue 12, Overload). Loaded but not full
        (`finals_loaded`): not before BUSY_SPECULATIVE_SILENCE_MS.
        """
        cfg = self.config
        floor = self.ms(cfg.speculative_silence_ms)
        if cfg.semantic_punctuation:
            return floor  # the decision to close needs the text
        limit = self.silence_limit(s, fe)
        if self._finals_busy():
            return limit
        if self._finals_loaded():
            floor = max(floor, self.ms(BUSY_SPECULATIVE_SILENCE_MS))
        lead = self.ms(1300 * self._final_latency_s() + 100)
        return min(max(limit - lead, floor), limit)

    def best_pause(self, earliest: int, fe: int) -> int:
        """Where to cut before `fe`: the middle of the longest run of non-speech frames of the
        last CUT_SEARCH_S (the latest of equals), else the least speech-like frame."""
        frames = [(fs, p) for fs, p in self._recent if fs >= earliest]
        if not frames:
            return fe
        thr = self.config.vad_threshold
        best: tuple[int, int] | None = None  # (length, start frame index in `frames`)
        run = 0
        for i, (_, p) in enumerate(frames):
            run = run + 1 if p < thr else 0
            if run and (best is None or run >= best[0]):
                best = (run, i - run + 1)
        if best is None:
            fs, _ = min(reversed(frames), key=lambda f: f[1])
            return fs + self.frame // 2
        length, first = best
        return frames[first][0] + length * self.frame // 2

    # -- transitions ----------------------------------------------------------------------------
    def _open(self, start: int, speech_end: int, voiced: bool = True) -> Opened:
        self.segments += 1
        self.open = Segment(self.segments, start, speech_end, voiced)
        return Opened(self.segments, start)

    def _close(self, s: Segment, end: int, reason: str) -> Closed:
        if self.open is s:
            self.open = None
        self.last_closed_end = end
        return Closed(s.index, end, reason)

    def _force_cut(self, s: Segment, fe: int) -> list[Event]:
        """The sentence fills Whisper's window: end it at the best pause of its last seconds and
        carry the audio after that pause into a new sentence. Cutting at `fe` itself would split
        speech, and Whisper drops the unfinished words at a window's edge (lost from both sides)."""
        cut = self.best_pause(s.start + self.ms(1000), fe)
        events: list[Event] = [self._close(s, cut, "cut")]
        if s.speech_end > cut and not self.stopped:
            events.append(self._open(cut, s.speech_end, s.voiced))
        return events
