"""Streaming recognition on a non-streaming model: VAD sentences, previews, speculative finals.

A session feeds 16 kHz audio as it arrives; the recognizer

1. runs Silero VAD on 32 ms frames and opens a sentence at speech onset (with pre-roll);
2. while the sentence is open, asks for a preview decode every `partial_interval_s` of new audio
   (short window, greedy, the agreed prefix of the previous two previews forced, so the start of
   the preview stops changing: "locked prefix + replaceable tail");
3. as soon as a pause starts (`speculative_silence_ms`), decodes the sentence for real (full 30 s
   window, beam search, word alignment) while the pause is still being measured. If the pause
   reaches `max_sentence_silence` the speculative result *is* the final, so the final arrives
   right when the pause is long enough instead of a decode later; if speech resumes it is dropped;
4. forces a cut at `max_sentence_s` (Whisper's window is 30 s);
5. when translating, also translates the open sentence now and then (`translation_interval_s`,
   preview priority: coalesced and served last), so provisional translations grow with previews.

Results are delivered in order: a sentence's previews never follow its final, and previews of the
next sentence wait until the previous final is out. Nothing here knows about wire protocols.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import numpy as np

from voxscope.engine.hotwords import Hotword, apply_hotwords
from voxscope.engine.scheduler import InferenceScheduler
from voxscope.engine.text import SENTENCE_END, close_sentence, ends_sentence, finalize_words, is_cjk
from voxscope.engine.types import DecodeOptions, Priority, Transcript, Word
from voxscope.engine.vad import FRAME_SAMPLES, SileroVad

log = logging.getLogger(__name__)

SR = 16000
PARTIAL_NO_SPEECH = 0.5  # previews are dropped more readily than finals when Whisper hears silence
# A sentence this short is decoded with the audio before it as context, and only its own words
# kept: alone ("Ever failed.", 1.1 s) Whisper has too little to go on and invents a sentence
# ("Have a great day!"); padding it with silence does not help, real preceding speech does.
SHORT_SENTENCE_S = 2.0
CONTEXT_AUDIO_S = 2.0
CUT_SEARCH_S = 8.0  # a forced cut (window full) ends the sentence at the best pause this far back


@dataclass
class RecognizerConfig:
    language: str | None = None
    allowed_languages: tuple[str, ...] | None = None
    task: str = "transcribe"
    max_sentence_silence_ms: int = 1300
    semantic_punctuation: bool = False
    multi_threshold: bool = False
    vad_threshold: float = 0.5
    remove_disfluencies: bool = False
    punctuation: bool = True
    prompt: str | None = None  # context text (update_context, corpus)
    hotwords: tuple[Hotword, ...] = ()  # from a vocabulary: prompt bias + near-miss correction
    partials: bool = True
    partial_interval_s: float = 0.6
    min_partial_speech_ms: int = 400
    max_sentence_s: float = 29.5
    preroll_ms: int = 300
    min_speech_ms: int = 96
    speculative_silence_ms: int = 240
    semantic_pause_ms: int = 400
    tail_ms: int = 200
    final_beam: int = 5
    max_sentences: int | None = None  # one-sentence mode: stop after this many finals
    report_empty_finals: bool = False  # emit a final with empty text when a segment held no words
    translate_to: tuple[str, ...] = ()  # also translate each final sentence ("en": Whisper's task)
    translation_interval_s: float = 1.5  # at most one provisional translation per this much audio


@dataclass
class ResultWord:
    begin_ms: int
    end_ms: int
    text: str
    punctuation: str


@dataclass
class SentenceResult:
    sentence_id: int
    begin_ms: int
    end_ms: int | None  # None while partial
    current_ms: int  # how far the audio behind this result reaches
    text: str
    words: list[ResultWord]
    final: bool
    language: str | None
    stable_chars: int = 0  # leading characters of `text` that no longer change (partials)
    segment: int = 0  # the VAD segment this result belongs to (see Boundary)
    translations: dict[str, Translation] = field(default_factory=dict)  # finals, when asked for


@dataclass
class Translation:
    text: str
    words: list[ResultWord]


Emit = Callable[[SentenceResult], Awaitable[None]]
# Called synchronously when a VAD segment opens ("start", segment, begin_ms), when a pause starts
# in it ("pause", segment, last_speech_ms: the end may be near) and when it closes ("end", segment,
# end_ms): lets protocols report speech start/stop in order with results.
Boundary = Callable[[str, int, int], None]


class _AudioBuffer:
    """Audio since some absolute sample index, with cheap appends and trimming."""

    def __init__(self) -> None:
        self._data = np.zeros(SR * 8, dtype=np.float32)
        self._len = 0
        self.start = 0  # absolute index of _data[0]

    @property
    def end(self) -> int:
        return self.start + self._len

    def append(self, pcm: np.ndarray) -> None:
        need = self._len + pcm.size
        if need > self._data.size:
            grown = np.zeros(max(need, self._data.size * 2), dtype=np.float32)
            grown[: self._len] = self._data[: self._len]
            self._data = grown
        self._data[self._len : need] = pcm
        self._len = need

    def slice(self, begin: int, end: int) -> np.ndarray:
        b = max(begin - self.start, 0)
        e = max(min(end - self.start, self._len), b)
        return self._data[b:e].copy()

    def trim(self, keep_from: int) -> None:
        drop = min(max(keep_from - self.start, 0), self._len)
        if drop <= 0:
            return
        self._data[: self._len - drop] = self._data[drop : self._len]
        self._len -= drop
        self.start += drop


@dataclass(eq=False)
class _Sentence:
    start: int
    speech_end: int
    index: int = 0
    voiced: bool = True
    end: int | None = None
    sid: int | None = None
    spec_end: int | None = None
    spec_future: asyncio.Future | None = None
    last_partial_end: int = 0
    partial_seq: int = 0
    emitted_partial_seq: int = 0
    prev_hypothesis: str = ""
    committed: str = ""
    language: str | None = None
    partial_future: asyncio.Future | None = None
    translation_future: asyncio.Future | None = None
    latest_partial: tuple[int, Transcript, int] | None = None  # (seq, result, audio end)
    last_result: SentenceResult | None = None  # the preview last emitted
    translation_seq: int = 0
    translated_end: int = 0  # audio end of the last provisional translation asked for
    translated_text: str = ""  # the preview text it was asked for
    provisional: dict[str, Translation] = field(default_factory=dict)
    provisional_seq: int = 0
    opened_at: float = field(default_factory=time.monotonic)  # wall clock: onset detected
    speech_end_at: float = field(default_factory=time.monotonic)  # wall clock: last speech fed
    lead: int = 0  # samples of context audio before `start` in the final decode's window


@dataclass
class RecognizerStats:
    partials_emitted: int = 0
    finals_emitted: int = 0
    speculative_hits: int = 0
    speculative_misses: int = 0


class StreamingRecognizer:
    def __init__(self, scheduler: InferenceScheduler, vad: SileroVad, config: RecognizerConfig,
                 emit: Emit, boundary: Boundary | None = None) -> None:
        self._sched = scheduler
        self._vad = vad.stream()
        self.config = config
        self._emit = emit
        self._boundary = boundary
        self._segments = 0
        self._buf = _AudioBuffer()
        self._frames = 0  # VAD frames seen
        # (frame start, speech probability) of the last CUT_SEARCH_S: where a forced cut may go
        self._recent: deque[tuple[int, float]] = deque(maxlen=int(CUT_SEARCH_S * SR)
                                                       // FRAME_SAMPLES)
        self._run_start: int | None = None
        self._open: _Sentence | None = None
        self._last_closed_end = 0
        self._chain: asyncio.Task | None = None  # last finalize task: finals go out in order
        self._next_id = 1
        self._finals_done = 0
        self._stream_language: str | None = config.language
        self._tasks: set[asyncio.Task] = set()
        self._partial_keys: set[tuple[int, int]] = set()
        self._closed = False
        self.error: BaseException | None = None
        self.stats = RecognizerStats()
        self.last_voice_monotonic = time.monotonic()
        self.done = False  # one-sentence mode reached its sentence count
        self._input_closed = False  # abandon(): no more audio, pending finals still delivered
        self.on_timing: Callable[[str, float], None] | None = None  # delays, for metrics

    # -- public -----------------------------------------------------------------------------
    @property
    def audio_seconds(self) -> float:
        return self._buf.end / SR

    def feed(self, pcm: np.ndarray) -> None:
        """Take 16 kHz mono float32 audio. Never blocks on the model."""
        if self._closed or self.done or self._input_closed or pcm.size == 0:
            return
        self._buf.append(pcm)
        probs = self._vad.process(pcm)
        for p in probs:
            fs = self._frames * FRAME_SAMPLES
            self._frames += 1
            self._on_frame(float(p), fs, fs + FRAME_SAMPLES)
        self._maybe_partial()
        self._trim()

    async def finish(self) -> None:
        """End of audio: close the open sentence and wait until every final has been emitted."""
        if self._closed:
            return
        tail = self._vad.flush()
        for p in tail:
            fs = self._frames * FRAME_SAMPLES
            self._frames += 1
            self._on_frame(float(p), fs, min(fs + FRAME_SAMPLES, self._buf.end))
        s = self._open
        if s is not None and not self.done:
            end = min(s.speech_end + self._ms(self.config.tail_ms), self._buf.end)
            self._close(s, end)
        if self._chain is not None:
            await asyncio.shield(self._chain)
        if self.error is not None:
            raise self.error

    async def abandon(self) -> None:
        """Drop the open sentence unrecognised, deliver the finals of closed ones, then close."""
        s, self._open = self._open, None
        if s is not None:
            self._sched.drop_partials((id(self), s.start))
        self._input_closed = True
        if self._chain is not None:
            await asyncio.gather(self._chain, return_exceptions=True)
        self.close()

    def close(self) -> None:
        """Free everything (client gone). Pending decodes finish in the scheduler but are ignored."""
        if self._closed:
            return
        self._closed = True
        for key in list(self._partial_keys):
            self._sched.drop_partials(key)
        self._partial_keys.clear()
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        self._buf = _AudioBuffer()
        self._open = None

    # -- VAD state machine ------------------------------------------------------------------
    @staticmethod
    def _ms(ms: float) -> int:
        return int(ms * SR / 1000)

    def _silence_limit(self, s: _Sentence) -> int:
        limit = self.config.max_sentence_silence_ms
        if self.config.multi_threshold:
            # Long sentences accept shorter pauses as their end, so they don't run on for ever.
            length_s = (self._buf.end - s.start) / SR
            if length_s > 20:
                limit = min(limit, 300)
            elif length_s > 10:
                limit = min(limit, 600)
        return self._ms(limit)

    def _speculation_delay(self, s: _Sentence) -> int:
        """Silence after which the final decode starts, before the pause is known to end it.

        Early enough that the result is ready when the pause reaches its limit (judged by how long
        final decodes take right now), but no earlier: every pause that turns out to be a breath
        inside a sentence wastes a full decode, which costs other streams latency.
        """
        cfg = self.config
        floor = self._ms(cfg.speculative_silence_ms)
        if cfg.semantic_punctuation:
            return floor  # the decision to close needs the text
        limit = self._silence_limit(s)
        lead = self._ms(1300 * self._sched.stats.final_latency_ema_s + 100)
        return min(max(limit - lead, floor), limit)

    def _on_frame(self, p: float, fs: int, fe: int) -> None:
        cfg = self.config
        thr = cfg.vad_threshold
        if p >= thr:
            self.last_voice_monotonic = time.monotonic()
        self._recent.append((fs, p))
        s = self._open
        if s is None:
            if p >= thr:
                if self._run_start is None:
                    self._run_start = fs
                if fe - self._run_start >= self._ms(cfg.min_speech_ms) and not self.done:
                    start = max(self._run_start - self._ms(cfg.preroll_ms), self._last_closed_end,
                                self._buf.start)
                    self._segments += 1
                    self._open = _Sentence(start=start, speech_end=fe, last_partial_end=start,
                                           language=self._stream_language, index=self._segments)
                    self._run_start = None
                    if self._boundary is not None:
                        self._boundary("start", self._segments, int(start * 1000 / SR))
            else:
                self._run_start = None
            return

        neg = max(thr - 0.15, 0.01)  # hysteresis: weaker frames continue speech, don't start it
        if p >= thr or (p >= neg and s.voiced):
            s.speech_end = fe
            s.speech_end_at = time.monotonic()
            s.voiced = True
            if s.spec_future is not None and s.spec_end is not None and s.spec_end < fe:
                # Speech resumed: the speculative final is stale; if it has not started, it
                # never will (a cancelled request is skipped by the scheduler).
                s.spec_future.cancel()
                s.spec_future = None
                self.stats.speculative_misses += 1
        else:
            s.voiced = False
        silence = fe - s.speech_end
        tail = min(silence, self._ms(cfg.tail_ms))
        if silence >= self._speculation_delay(s) and (
                s.spec_end is None or s.spec_end < s.speech_end):
            self._speculate(s, s.speech_end + tail)
        if not cfg.semantic_punctuation and silence >= self._silence_limit(s):
            self._close(s, s.spec_end if s.spec_end and s.spec_end >= s.speech_end
                        else s.speech_end + tail)
        elif cfg.semantic_punctuation and silence >= max(self._silence_limit(s) * 2,
                                                         self._ms(3000)):
            # Semantic mode waits for punctuation, but not for ever on a long silence.
            self._close(s, s.spec_end if s.spec_end and s.spec_end >= s.speech_end
                        else s.speech_end + tail)
        elif fe - s.start >= int(cfg.max_sentence_s * SR):
            self._force_cut(s, fe)

    def _force_cut(self, s: _Sentence, fe: int) -> None:
        """The sentence fills Whisper's window: end it at the best pause of its last seconds and
        carry the audio after that pause into a new sentence. Cutting at `fe` itself would split
        speech, and Whisper drops the unfinished words at a window's edge (lost from both sides)."""
        cut = self._best_pause(s.start + self._ms(1000), fe)
        self._close(s, cut)
        if s.speech_end <= cut or self.done:
            return  # nothing said after the cut: the next onset opens a sentence as usual
        self._segments += 1
        self._open = _Sentence(start=cut, speech_end=s.speech_end, voiced=s.voiced,
                               last_partial_end=cut, language=self._stream_language,
                               index=self._segments)
        if self._boundary is not None:
            self._boundary("start", self._segments, int(cut * 1000 / SR))

    def _best_pause(self, earliest: int, fe: int) -> int:
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
            return fs + FRAME_SAMPLES // 2
        length, first = best
        return frames[first][0] + length * FRAME_SAMPLES // 2

    # -- decodes --------------------------------------------------------------------------------
    def _final_options(self, s: _Sentence) -> DecodeOptions:
        cfg = self.config
        return DecodeOptions(language=cfg.language, allowed_languages=cfg.allowed_languages,
                             task=cfg.task, beam_size=cfg.final_beam, full_window=True,
                             word_timestamps=True, prompt=cfg.prompt, hotwords=cfg.hotwords)

    def _final_audio(self, s: _Sentence, end: int) -> np.ndarray:
        """The audio of a final decode: the sentence, after some context audio if it is short."""
        s.lead = 0
        if end - s.start < self._ms(SHORT_SENTENCE_S * 1000):
            s.lead = max(min(self._ms(CONTEXT_AUDIO_S * 1000), s.start - self._buf.start), 0)
        return self._buf.slice(s.start - s.lead, end)

    def _submit(self, audio: np.ndarray, opts: DecodeOptions, priority: Priority,
                key: object | None = None, first: bool = False) -> asyncio.Future:
        return asyncio.wrap_future(self._sched.submit(audio, opts, priority, key, first))

    def _speculate(self, s: _Sentence, end: int) -> None:
        if s.spec_future is not None and not s.spec_future.done():
            s.spec_future.cancel()  # stale: more speech arrived since
        s.spec_end = end
        s.spec_future = self._submit(self._final_audio(s, end), self._final_options(s),
                                     Priority.FINAL)
        if self._boundary is not None:
            self._boundary("pause", s.index, int(s.speech_end * 1000 / SR))
        if self.config.semantic_punctuation:
            self._spawn(self._semantic_check(s, end, s.spec_future))

    async def _semantic_check(self, s: _Sentence, end: int, fut: asyncio.Future) -> None:
        try:
            tr = await asyncio.shield(fut)
        except (asyncio.CancelledError, Exception):
            return
        if self._open is not s or s.spec_end != end or tr is None:
            return
        # Close only at a pause whose text ends a sentence; otherwise the sentence goes on.
        if tr.empty or ends_sentence(tr.text):
            self._close(s, end)

    def _maybe_partial(self) -> None:
        s = self._open
        cfg = self.config
        if s is None or not cfg.partials:
            return
        now = self._buf.end
        interval = cfg.partial_interval_s
        if s.partial_seq:
            # Later previews back off when decoding is slow (a loaded machine): each one costs
            # every stream latency, and the newest replaces the older anyway.
            interval = max(interval, 1.5 * self._sched.stats.partial_latency_ema_s)
        if now - s.last_partial_end < int(interval * SR):
            return
        if s.speech_end <= s.last_partial_end:
            return  # nothing new was said
        if s.speech_end - s.start < self._ms(cfg.preroll_ms + cfg.min_partial_speech_ms):
            return  # a fraction of a word: Whisper tends to invent text ("you") for it
        s.last_partial_end = now
        s.partial_seq += 1
        opts = DecodeOptions(language=s.language or cfg.language,
                             allowed_languages=cfg.allowed_languages, task=cfg.task, beam_size=1,
                             full_window=False, word_timestamps=False, prefix=s.committed or None,
                             prompt=cfg.prompt, hotwords=cfg.hotwords, temperature_fallback=False)
        # Previews are coalesced per sentence: a newer one replaces a queued older one.
        key = (id(self), s.start)
        self._partial_keys.add(key)
        # Trailing silence gives Whisper room to invent (repeat) text: stop the window shortly
        # after the last voiced frame.
        end = min(now, s.speech_end + self._ms(cfg.tail_ms))
        fut = self._submit(self._buf.slice(s.start, end), opts, Priority.PARTIAL, key,
                           first=s.partial_seq == 1)
        s.partial_future = fut
        self._spawn(self._deliver_partial(s, s.partial_seq, now, fut))

    async def _deliver_partial(self, s: _Sentence, seq: int, audio_end: int,
                               fut: asyncio.Future) -> None:
        tr: Transcript | None = await fut
        if tr is None or tr.empty or self._closed or tr.no_speech_prob > PARTIAL_NO_SPEECH:
            return
        if s.latest_partial is None or seq > s.latest_partial[0]:
            s.latest_partial = (seq, tr, audio_end)
        if self._open is not s or seq <= s.emitted_partial_seq:
            return  # closed meanwhile (its finalizer decides), or a newer preview went out
        if self._chain is not None and not self._chain.done():
            return  # the previous sentence's final is not out yet: keep the order
        await self._emit_partial(s, seq, tr, audio_end)

    async def _emit_partial(self, s: _Sentence, seq: int, tr: Transcript,
                            audio_end: int) -> None:
        first = not s.emitted_partial_seq
        s.emitted_partial_seq = seq
        if s.language is None and tr.language_probability >= 0.5:
            s.language = tr.language
        text = tr.text.strip()
        agreed = _common_prefix(s.prev_hypothesis, text, cjk=is_cjk(tr.language))
        if len(agreed) > len(s.committed) and agreed.startswith(s.committed):
            s.committed = agreed
        s.prev_hypothesis = text
        if s.sid is None:
            s.sid = self._take_id()
        offset = s.start / SR
        words = finalize_words([w.shifted(offset) for w in tr.words], tr.language,
                               simplified=True, remove_fillers=self.config.remove_disfluencies,
                               punctuation=self.config.punctuation)
        words = apply_hotwords(words, self.config.hotwords)
        stable = len(s.committed) if text.startswith(s.committed) else 0
        result = SentenceResult(
            sentence_id=s.sid, begin_ms=int(s.start * 1000 / SR), end_ms=None,
            current_ms=int(audio_end * 1000 / SR), text=_text_of(words),
            words=[_result_word(w) for w in words], final=False, language=tr.language,
            stable_chars=stable, segment=s.index, translations=dict(s.provisional))
        s.last_result = result
        self.stats.partials_emitted += 1
        if self._open is s:
            self._maybe_translate(s, audio_end, result.text)
        if first and self.on_timing is not None:
            self.on_timing("first_partial", time.monotonic() - s.opened_at)
        await self._emit(result)

    def _translation_key(self, s: _Sentence) -> tuple[int, int, str]:
        return (id(self), s.start, "translate")

    def _maybe_translate(self, s: _Sentence, audio_end: int, text: str) -> None:
        """Translate the open sentence as far as the preview reached, if it changed and the last
        provisional translation is old enough. Preview priority: served after every final, a queued
        one is replaced by a newer one and dropped when the sentence ends, so under load they are
        what gives way; the interval also widens with the preview latency."""
        cfg = self.config
        if not cfg.translate_to or not text or text == s.translated_text:
            return
        interval = max(cfg.translation_interval_s, 3 * self._sched.stats.partial_latency_ema_s)
        # Until one has arrived every preview asks (a newer request replaces a queued one): with
        # the interval alone, a first attempt that came back empty may have no successor.
        if s.provisional_seq and audio_end - s.translated_end < int(interval * SR):
            return
        s.translation_seq += 1
        s.translated_end, s.translated_text = audio_end, text
        opts = DecodeOptions(language=s.language or cfg.language or self._stream_language,
                             allowed_languages=cfg.allowed_languages, task="translate",
                             beam_size=1, full_window=False, word_timestamps=False,
                             temperature_fallback=False)
        key = self._translation_key(s)
        self._partial_keys.add(key)
        end = min(audio_end, s.speech_end + self._ms(cfg.tail_ms))
        fut = self._submit(self._buf.slice(s.start, end), opts, Priority.PARTIAL, key)
        self._spawn(self._deliver_translation(s, s.translation_seq, fut))

    async def _deliver_translation(self, s: _Sentence, seq: int, fut: asyncio.Future) -> None:
        tr: Transcript | None = await fut
        if (tr is None or tr.empty or self._closed or seq <= s.provisional_seq
                or tr.no_speech_prob > PARTIAL_NO_SPEECH):
            return
        words = finalize_words([w.shifted(s.start / SR) for w in tr.words], "en", simplified=False,
                               remove_fillers=False, punctuation=True)
        text = _text_of(words)
        if not words or _latin_share(text) < 0.9:
            return  # Whisper echoed the source language: not a translation
        s.provisional_seq = seq
        s.provisional = {"en": Translation(text, [_result_word(w) for w in words])}
        if self._open is not s or s.last_result is None:
            return  # the final (with its own translation) follows, or the next preview carries it
        if self._chain is not None and not self._chain.done():
            return  # the previous sentence's final is not out yet: keep the order
        # A result of its own, so a listener sees the translation grow (translation-only tasks
        # have nothing else to show until the final).
        await self._emit(replace(s.last_result, translations=dict(s.provisional)))

    def _close(self, s: _Sentence, end: int) -> None:
        if self._open is s:
            self._open = None
        s.end = end
        self._last_closed_end = end
        if self._boundary is not None:
            self._boundary("end", s.index, int(end * 1000 / SR))
        self._sched.drop_partials(self._translation_key(s))  # the final translation supersedes it
        self._partial_keys.discard(self._translation_key(s))
        key = (id(self), s.start)
        if s.emitted_partial_seq or s.partial_future is None:
            self._sched.drop_partials(key)
            self._partial_keys.discard(key)
        else:
            # Keep the queued preview: a sentence recognised faster than real time (audio sent in
            # a burst) still shows one preview before its final, as at real-time pace.
            self._sched.promote(key)
        if s.spec_future is not None and s.spec_end == end:
            fut = s.spec_future
            self.stats.speculative_hits += 1
        else:
            if s.spec_future is not None:
                s.spec_future.cancel()
                self.stats.speculative_misses += 1
            fut = self._submit(self._final_audio(s, end), self._final_options(s),
                               Priority.FINAL)
        if self.config.translate_to:
            # Translation decodes the same audio with Whisper's translate task, in parallel.
            cfg = self.config
            s.translation_future = self._submit(
                self._buf.slice(s.start, end),
                DecodeOptions(language=cfg.language or self._stream_language,
                              allowed_languages=cfg.allowed_languages, task="translate",
                              beam_size=cfg.final_beam, full_window=True, word_timestamps=True),
                Priority.FINAL)
        previous = self._chain
        self._chain = self._spawn(self._finalize(s, fut, previous))

    async def _finalize(self, s: _Sentence, fut: asyncio.Future,
                        previous: asyncio.Task | None) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        if self.done:
            return  # one-sentence mode: the sentence has been delivered, nothing follows it
        if not s.emitted_partial_seq and s.partial_future is not None:
            with contextlib.suppress(Exception):
                await s.partial_future
            self._partial_keys.discard((id(self), s.start))
            if s.latest_partial is not None and not self._closed:
                await self._emit_partial(s, *s.latest_partial)
        try:
            tr: Transcript | None = await fut
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # surfaced to the session through finish()/error
            self.error = exc
            log.warning("final decode failed: %s", exc)
            return
        if self._closed:
            return
        if tr is None or tr.empty:
            await self._emit_empty(s, tr)
            return
        if tr.language_probability >= 0.5 and self.config.language is None:
            self._stream_language = tr.language
        offset = (s.start - s.lead) / SR
        # Words of the context audio belong to the sentence before (already delivered).
        own = [w for w in tr.words if (w.start + w.end) / 2 >= s.lead / SR]
        if s.lead and own and own[0].text[:1].islower() and own[0].text[:1].upper() != \
                own[0].text[:1]:
            # It was decoded as the middle of a sentence; on its own it starts one.
            first = own[0]
            cap = first.text[:1].upper() + first.text[1:]
            own[0] = replace(first, text=cap, raw=first.raw.replace(first.text, cap, 1))
        words = finalize_words([w.shifted(offset) for w in own], tr.language,
                               simplified=True, remove_fillers=self.config.remove_disfluencies,
                               punctuation=self.config.punctuation)
        words = apply_hotwords(words, self.config.hotwords)
        if not words:
            await self._emit_empty(s, tr)
            return
        if self.config.punctuation:
            words = close_sentence(words, tr.language)
        translations = await self._translations(s)
        groups = (_split_sentences(words) if self.config.semantic_punctuation and not translations
                  else [words])
        for group in groups:
            if self.done:
                return
            sid = s.sid if s.sid is not None else self._take_id()
            s.sid = None  # further groups of a split get fresh ids
            begin = max(int(group[0].start * 1000), int(s.start * 1000 / SR))
            end = max(int(group[-1].end * 1000), begin + 1)
            end = min(end, int(s.end * 1000 / SR)) if s.end else end
            end = max(end, begin + 1)
            result = SentenceResult(
                sentence_id=sid, begin_ms=begin, end_ms=end, current_ms=int(s.end * 1000 / SR),
                text=_text_of(group), words=[_result_word(w) for w in group],
                final=True, language=tr.language, stable_chars=0, segment=s.index,
                translations=translations)
            self.stats.finals_emitted += 1
            if group is groups[0] and self.on_timing is not None:
                self.on_timing("final", time.monotonic() - s.speech_end_at)
            self._finals_done += 1
            if self.config.max_sentences and self._finals_done >= self.config.max_sentences:
                self.done = True
                self._open = None
            await self._emit(result)

    async def _translations(self, s: _Sentence) -> dict[str, Translation]:
        if s.translation_future is None:
            return {}
        try:
            tr: Transcript | None = await s.translation_future
        except Exception as exc:  # surfaced like a failed final
            self.error = exc
            return {}
        if tr is None:
            return {}
        words = finalize_words([w.shifted(s.start / SR) for w in tr.words], "en", simplified=False,
                               remove_fillers=False, punctuation=True)
        if words:
            words = close_sentence(words, "en")
        # Whisper translates into English only; the protocol layer refuses other targets.
        return {"en": Translation(_text_of(words), [_result_word(w) for w in words])}

    async def _emit_empty(self, s: _Sentence, tr: Transcript | None) -> None:
        """A segment VAD heard but that held no words (noise, a cough): only if asked for."""
        if not self.config.report_empty_finals:
            return
        end = s.end if s.end is not None else s.start
        await self._emit(SentenceResult(
            sentence_id=s.sid or 0, begin_ms=int(s.start * 1000 / SR), end_ms=int(end * 1000 / SR),
            current_ms=int(end * 1000 / SR), text="", words=[], final=True,
            language=tr.language if tr else None, segment=s.index))

    # -- helpers --------------------------------------------------------------------------------
    def _take_id(self) -> int:
        sid = self._next_id
        self._next_id += 1
        return sid

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _trim(self) -> None:
        if self._open is not None:
            keep = self._open.start
        else:
            keep = self._buf.end - self._ms(self.config.preroll_ms + self.config.min_speech_ms
                                            + 200)
        keep -= self._ms(CONTEXT_AUDIO_S * 1000)  # context for a short sentence's final
        self._buf.trim(min(keep, self._buf.end))


def _common_prefix(a: str, b: str, *, cjk: bool) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    prefix = a[:n]
    if not cjk and n < min(len(a), len(b)):
        # back off to a word boundary: a half-agreed word is not agreed
        cut = prefix.rfind(" ")
        prefix = prefix[:cut] if cut > 0 else ""
    return prefix.rstrip()


def _latin_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    return sum(ch.isascii() for ch in letters) / len(letters) if letters else 0.0


def _text_of(words: list[Word]) -> str:
    return " ".join("".join(w.raw for w in words).split())


def _result_word(w: Word) -> ResultWord:
    return ResultWord(int(round(w.start * 1000)), int(round(w.end * 1000)), w.text, w.punctuation)


def _split_sentences(words: list[Word]) -> list[list[Word]]:
    groups: list[list[Word]] = [[]]
    for w in words:
        groups[-1].append(w)
        if w.punctuation and w.punctuation[-1] in SENTENCE_END:
            groups.append([])
    return [g for g in groups if g]

