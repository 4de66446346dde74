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

This module is the async driver: it owns the audio, asks `streaming.segmenter` where sentences
begin and end (pure, VAD probabilities in, events out), submits decodes to the scheduler, keeps the
order, and builds results with `streaming.agreement` (stable preview prefix) and `streaming.results`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import numpy as np

from voxscope.engine.hotwords import Hotword
from voxscope.engine.load import SPECULATE_MAX_FINAL_SHARE, SPECULATE_OFF_FINAL_SHARE
from voxscope.engine.scheduler import InferenceScheduler
from voxscope.engine.streaming import trace
from voxscope.engine.streaming.agreement import PreviewAgreement
from voxscope.engine.streaming.final_guard import (
    better,
    preview_reason,
    short_final_in_full,
    weak_reason,
)
from voxscope.engine.streaming.pace import Pace
from voxscope.engine.streaming.results import ResultWord as ResultWord
from voxscope.engine.streaming.results import (
    SentenceResult,
    Translation,
    english_words,
    final_result,
    final_translation,
    latin_share,
    own_words,
    result_word,
    sentence_words,
    split_sentences,
    text_of,
)
from voxscope.engine.streaming.segmenter import (
    Closed,
    EndpointConfig,
    Event,
    Opened,
    Paused,
    Resumed,
    Segment,
    Segmenter,
)
from voxscope.engine.text import close_sentence, ends_sentence, is_cjk
from voxscope.engine.types import SAMPLE_RATE, DecodeOptions, Priority, Transcript, Word
from voxscope.engine.vad import FRAME_SAMPLES, SileroVad

log = logging.getLogger(__name__)

SR = SAMPLE_RATE
PARTIAL_NO_SPEECH = 0.5  # previews are dropped more readily than finals when Whisper hears silence
# A sentence this short is decoded with the audio before it as context, and only its own words
# kept: alone ("Ever failed.", 1.1 s) Whisper has too little to go on and invents a sentence
# ("Have a great day!"); padding it with silence does not help, real preceding speech does.
SHORT_SENTENCE_S = 2.0
CONTEXT_AUDIO_S = 2.0
# A preview's tokens after its prompt: text and timestamps of fast speech stay under ~10 a second
# (Mandarin characters are mostly one token each); more is a greedy loop on a short window.
PREVIEW_TOKENS_PER_S = 12
PREVIEW_MIN_TOKENS = 16
# After a preview came back empty (or as silence) before any was shown, the next one is asked for
# this much audio later, not a whole `partial_interval_s`: on under a second of speech Whisper
# often returns nothing ("She had" -> ""), and a little more audio is enough.
RETRY_INTERVAL_S = 0.2
# A preview window this long (pre-roll included) checks the sentence's language once, when the
# stream's language was only carried over from its last final: shorter ones keep that language
# (detection on under a second of speech is often wrong: English as Mandarin at 0.99), so a
# Mandarin sentence after English ones showed English previews (Whisper translating) until its final.
LANGUAGE_CHECK_S = 1.3
# With no language given or carried over, a preview window shorter than LANGUAGE_CHECK_S detects
# the language itself; below this probability that guess is not shown (and does not set the
# sentence's language): on the first second of en_ldc93s1 Whisper answered Mandarin (0.72-0.75,
# "心情"), Tagalog, Korean, Japanese before English, and one such preview locked the sentence's
# previews to Mandarin.
SHORT_DETECTION_SURE_P = 0.9
# Outcomes of a decoded preview (`_preview_outcome`) that are never shown; the others are decided
# after waiting for the previous final.
_NOT_SHOWN = frozenset({"superseded", "empty", "stream_closed", "no_speech", "unsure_language"})
# A stream whose audio is more than this ahead of the wall clock was sent faster than real time (a
# burst): a real-time client is a chunk or two (0.1-0.4 s) ahead at most.
BURST_AHEAD_S = 1.0
# A text with at least this share of ASCII letters is in Latin script (else CJK): see
# _language_switch.
SCRIPT_SHARE = 0.5


@dataclass
class RecognizerConfig(EndpointConfig):
    """A stream's settings; the endpointing ones (and their defaults) come from EndpointConfig."""

    language: str | None = None
    allowed_languages: tuple[str, ...] | None = None
    task: str = "transcribe"
    remove_disfluencies: bool = False
    punctuation: bool = True
    prompt: str | None = None  # context text (update_context, corpus)
    hotwords: tuple[Hotword, ...] = ()  # from a vocabulary: prompt bias + near-miss correction
    partials: bool = True
    partial_interval_s: float = 0.6
    final_full_window: bool = True  # finals padded to 30 s (else audio + 1 s, like previews)
    min_partial_speech_ms: int = 400
    semantic_pause_ms: int = 400
    final_beam: int = 5
    max_sentences: int | None = None  # one-sentence mode: stop after this many finals
    report_empty_finals: bool = False  # emit a final with empty text when a segment held no words
    translate_to: tuple[str, ...] = ()  # also translate each final sentence ("en": Whisper's task)
    translation_interval_s: float = 1.5  # at most one provisional translation per this much audio


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
    seg: Segment  # its endpointing state, owned by the segmenter
    start: int
    index: int = 0
    end: int | None = None
    sid: int | None = None
    spec_end: int | None = None  # audio end of `spec_future`, the speculative final decode
    spec_future: asyncio.Future | None = None
    last_partial_end: int = 0
    partial_seq: int = 0
    emitted_partial_seq: int = 0
    retry_soon: bool = False  # nothing shown yet and the last preview came back empty
    language_check_seq: int = 0  # the preview that checks a carried-over language (0: none yet)
    agreement: PreviewAgreement = field(default_factory=PreviewAgreement)
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
    final_audio: np.ndarray | None = None  # what the final decoded (a recheck decodes it again)
    full_final: bool = False  # its final was decoded in the full window at once (no recheck)
    spec_full: bool = False  # ... and so was `spec_future`
    # Its previews were decoded in the language carried over from the stream's last final and no
    # language check came back: a final in another language will disagree with them (see
    # _early_recheck).
    language_unsure: bool = False
    early_full: asyncio.Future | None = None  # its full-window recheck, asked for at the close

    @property
    def speech_end(self) -> int:
        return self.seg.speech_end

    @property
    def committed(self) -> str:
        """The preview text two previews agreed on: forced as the next preview's prefix."""
        return self.agreement.committed


@dataclass
class RecognizerStats:
    partials_emitted: int = 0
    finals_emitted: int = 0
    speculative_hits: int = 0
    speculative_misses: int = 0
    final_rechecks: int = 0  # short-window finals decoded again in the full window
    early_rechecks_used: int = 0  # ... whose recheck was asked for at the close (_early_recheck)
    early_rechecks_dropped: int = 0  # early rechecks not needed (the short final agreed)


class StreamingRecognizer:
    def __init__(self, scheduler: InferenceScheduler, vad: SileroVad, config: RecognizerConfig,
                 emit: Emit, boundary: Boundary | None = None) -> None:
        self._sched = scheduler
        self._vad = vad.stream()
        self.config = config
        self._emit = emit
        self._boundary = boundary
        self._seg = Segmenter(config, sample_rate=SR, frame_samples=FRAME_SAMPLES,
                              final_latency_s=lambda: self._sched.stats.final_latency_ema_s,
                              finals_busy=self._finals_busy, finals_loaded=self._finals_loaded)
        # Above this measured share of model time on finals, no speculative final ahead of the
        # pause limit (>= 1: always, as before; the hub sets it from `speculate_max_final_share`).
        self.speculate_max_final_share = SPECULATE_MAX_FINAL_SHARE
        # Previews degrade first for a stream that is behind (see _close; the hub sets it from
        # `drop_previews_when_behind`).
        self.drop_previews_when_behind = False
        # A short-window final certain to be rechecked is decoded in the full window at once (see
        # _recheck_certain; the hub sets it from `full_final_when_unpreviewed`).
        self.full_final_when_unpreviewed = True
        # When the full-window recheck is asked for beside the short final (see _early_recheck;
        # the hub sets it from `early_recheck`): "off", or "language".
        self.early_recheck = "off"
        # False: a final in another language than its unchecked previews is not rechecked for
        # disagreeing with them (see _recheck; the hub sets it from `recheck_language_switch`).
        self.recheck_language_switch = True
        self._pace = Pace(SR)
        self._buf = _AudioBuffer()
        self._frames = 0  # VAD frames seen
        self._open: _Sentence | None = None
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
        self._pace.fed(pcm.size)
        self._seg.audio_start, self._seg.audio_end = self._buf.start, self._buf.end
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
        self._apply(self._seg.finish(self._buf.end))
        if self._chain is not None:
            await asyncio.shield(self._chain)
        if self.error is not None:
            raise self.error

    async def abandon(self) -> None:
        """Drop the open sentence unrecognised, deliver the finals of closed ones, then close."""
        s, self._open = self._open, None
        self._seg.stop()
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
        self._seg.stop()

    # -- endpointing: the segmenter decides, the driver acts ------------------------------------
    @staticmethod
    def _ms(ms: float) -> int:
        return int(ms * SR / 1000)

    def _on_frame(self, p: float, fs: int, fe: int) -> None:
        self._apply(self._seg.feed(p, fs, fe))
        if self._seg.last_voice_end == fe:
            self.last_voice_monotonic = time.monotonic()
        s = self._open
        if s is not None and s.speech_end == fe:
            s.speech_end_at = time.monotonic()  # a final's delay counts from the last speech fed

    def _apply(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, Opened):
                seg = self._seg.open
                assert seg is not None and seg.index == ev.segment
                self._open = _Sentence(seg=seg, start=ev.start, last_partial_end=ev.start,
                                       language=self._stream_language, index=ev.segment,
                                       language_unsure=(self.config.language is None
                                                        and self._stream_language is not None))
                if self._boundary is not None:
                    self._boundary("start", ev.segment, int(ev.start * 1000 / SR))
                trace.event(id(self), "open", seg=ev.segment, start_s=ev.start / SR,
                            at_s=self._buf.end / SR, language=self._stream_language)
                continue
            s = self._open
            if s is None or s.index != ev.segment:
                continue  # dropped by the driver meanwhile (abandon, one-sentence mode done)
            if isinstance(ev, Paused):
                self._speculate(s, ev.end)
            elif isinstance(ev, Resumed):
                # Speech resumed: the speculative final is stale; if it has not started, it
                # never will (a cancelled request is skipped by the scheduler).
                if s.spec_future is not None:
                    s.spec_future.cancel()
                    s.spec_future = None
                    self._count_speculation(hit=False)
                    trace.event(id(self), "resumed", seg=s.index)
            elif isinstance(ev, Closed):
                self._close(s, ev.end)

    # -- decodes --------------------------------------------------------------------------------
    def _final_options(self, s: _Sentence) -> DecodeOptions:
        cfg = self.config
        return DecodeOptions(language=cfg.language, allowed_languages=cfg.allowed_languages,
                             task=cfg.task, beam_size=cfg.final_beam,
                             full_window=cfg.final_full_window, word_timestamps=True,
                             prompt=cfg.prompt, hotwords=cfg.hotwords)

    def _final_audio(self, s: _Sentence, end: int) -> np.ndarray:
        """The audio of a final decode: the sentence, after some context audio if it is short."""
        s.lead = 0
        if end - s.start < self._ms(SHORT_SENTENCE_S * 1000):
            s.lead = max(min(self._ms(CONTEXT_AUDIO_S * 1000), s.start - self._buf.start), 0)
        s.final_audio = self._buf.slice(s.start - s.lead, end)
        return s.final_audio

    def _submit(self, audio: np.ndarray, opts: DecodeOptions, priority: Priority,
                key: object | None = None, first: bool = False,
                any_lane: bool = False) -> asyncio.Future:
        if any_lane:  # only then: scheduler stand-ins in tests take the plain call
            return asyncio.wrap_future(self._sched.submit(audio, opts, priority, key, first,
                                                          any_lane=True))
        return asyncio.wrap_future(self._sched.submit(audio, opts, priority, key, first))

    def _speculate(self, s: _Sentence, end: int) -> None:
        if s.spec_future is not None and not s.spec_future.done():
            s.spec_future.cancel()  # stale: more speech arrived since
        s.spec_end = end
        audio, opts = self._final_audio(s, end), self._final_options(s)
        # Early (a pause just began) a preview may still be shown before the close, so only when
        # none was; under load speculation waits for the pause limit and the close follows at once.
        s.spec_full = (not self._promotes_preview(s) and self._recheck_certain(s)
                       and (not s.emitted_partial_seq or self._finals_busy()))
        if s.spec_full:
            opts = replace(opts, full_window=True)
        s.spec_future = self._submit(audio, opts, Priority.FINAL, any_lane=s.spec_full)
        trace.event(id(self), "speculate", seg=s.index, end_s=end / SR)
        if self._boundary is not None:
            self._boundary("pause", s.index, int(s.speech_end * 1000 / SR))
        if self.config.semantic_punctuation:
            self._spawn(self._semantic_check(s, end, s.spec_future))

    async def _semantic_check(self, s: _Sentence, end: int, fut: asyncio.Future) -> None:
        try:
            tr = await asyncio.shield(fut)
        except (asyncio.CancelledError, Exception):
            return
        if tr is None:
            return
        # Close only at a pause whose text ends a sentence; otherwise the sentence goes on.
        self._apply(self._seg.semantic_answer(s.index, end, tr.empty or ends_sentence(tr.text)))

    def _maybe_partial(self) -> None:
        s = self._open
        cfg = self.config
        if s is None or not cfg.partials:
            return
        now = self._buf.end
        interval = cfg.partial_interval_s
        if s.retry_soon:
            interval = min(interval, RETRY_INTERVAL_S)
        elif s.partial_seq:
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
        s.retry_soon = False
        # Trailing silence gives Whisper room to invent (repeat) text: stop the window shortly
        # after the last voiced frame.
        end = min(now, s.speech_end + self._ms(cfg.tail_ms))
        language, hint, prefix = s.language or cfg.language, None, s.committed or None
        if (cfg.language is None and s.language is not None and not s.language_check_seq
                and end - s.start >= self._ms(LANGUAGE_CHECK_S * 1000)):
            # Detect, keeping the carried-over language unless clearly another; no agreed text
            # forced: it is in the carried-over language.
            language, hint, prefix = None, s.language, None
            s.language_check_seq = s.partial_seq
        opts = DecodeOptions(language=language, language_hint=hint,
                             allowed_languages=cfg.allowed_languages, task=cfg.task, beam_size=1,
                             full_window=False, word_timestamps=False, prefix=prefix,
                             prompt=cfg.prompt, hotwords=cfg.hotwords, temperature_fallback=False,
                             max_new_tokens=PREVIEW_MIN_TOKENS
                             + int(PREVIEW_TOKENS_PER_S * (end - s.start) / SR))
        # Previews are coalesced per sentence: a newer one replaces a queued older one.
        key = (id(self), s.start)
        self._partial_keys.add(key)
        fut = self._submit(self._buf.slice(s.start, end), opts, Priority.PARTIAL, key,
                           first=not s.emitted_partial_seq)
        s.partial_future = fut
        trace.event(id(self), "preview_submit", seg=s.index, seq=s.partial_seq, at_s=now / SR,
                    audio_s=(end - s.start) / SR, language=opts.language, prefix=opts.prefix)
        self._spawn(self._deliver_partial(s, s.partial_seq, now, fut))

    async def _deliver_partial(self, s: _Sentence, seq: int, audio_end: int,
                               fut: asyncio.Future) -> None:
        tr: Transcript | None = await fut
        outcome = self._preview_outcome(s, seq, tr, audio_end)
        if trace.enabled():
            trace.event(id(self), "preview_result", seg=s.index, seq=seq, outcome=outcome,
                        language=tr.language if tr else None, text=tr.text if tr else None,
                        no_speech=round(tr.no_speech_prob, 3) if tr else None)
        if tr is None or outcome in _NOT_SHOWN:
            if tr is not None and seq == s.partial_seq and not s.emitted_partial_seq:
                s.retry_soon = True  # nothing to show yet: ask again soon, not an interval later
            if seq == s.language_check_seq:
                s.language_check_seq = 0  # nothing learnt: the next preview checks
            return
        if seq == s.language_check_seq:
            s.language_unsure = False  # the previews' language was checked on this sentence
        if seq == s.language_check_seq and tr.language != s.language:
            # The sentence is in another language than the stream's last one: its previews
            # follow, and text agreed in the old language is no prefix for them.
            s.language, s.agreement = tr.language, PreviewAgreement()
        elif s.language_check_seq and seq > s.language_check_seq and tr.language != s.language:
            return  # asked for in the old language before the check came back: stale
        if s.latest_partial is None or seq > s.latest_partial[0]:
            s.latest_partial = (seq, tr, audio_end)
        while self._chain is not None and not self._chain.done():
            # The previous sentence's final is not out yet: keep the order, and show this
            # preview as soon as it is (not a preview interval later). `wait`, not `gather`:
            # cancelling this task (close) must not cancel the finals.
            await asyncio.wait({self._chain})
        if self._closed or self._open is not s or seq <= s.emitted_partial_seq:
            return  # closed meanwhile (its finalizer decides), or a newer preview went out
        if s.latest_partial is not None and s.latest_partial[0] > seq:
            return  # a newer preview came back while this one waited: it goes out instead
        await self._emit_partial(s, seq, tr, audio_end)

    def _unsure_language(self, s: _Sentence, tr: Transcript, audio_end: int) -> bool:
        """A preview whose language Whisper guessed from too little audio (see
        SHORT_DETECTION_SURE_P): not shown; a little more audio decides."""
        return (s.language is None and self.config.language is None
                and audio_end - s.start < self._ms(LANGUAGE_CHECK_S * 1000)
                and tr.language_probability < SHORT_DETECTION_SURE_P)

    def _preview_outcome(self, s: _Sentence, seq: int, tr: Transcript | None,
                         audio_end: int) -> str:
        """Why a decoded preview is shown or not: `_deliver_partial`'s rules (the first ones,
        _NOT_SHOWN, decide at once) and the trace's words for them."""
        if tr is None:
            return "superseded"
        if tr.empty:
            return "empty"
        if self._closed:
            return "stream_closed"
        if tr.no_speech_prob > PARTIAL_NO_SPEECH:
            return "no_speech"
        if self._unsure_language(s, tr, audio_end):
            return "unsure_language"
        if self._open is not s:
            return "sentence_closed"
        if seq <= s.emitted_partial_seq:
            return "older"
        if self._chain is not None and not self._chain.done():
            return "held_for_previous_final"
        return "shown"

    async def _emit_partial(self, s: _Sentence, seq: int, tr: Transcript,
                            audio_end: int) -> None:
        first = not s.emitted_partial_seq
        s.emitted_partial_seq = seq
        if s.language is None and tr.language_probability >= 0.5:
            s.language = tr.language
        stable = s.agreement.insert(tr.text, cjk=is_cjk(tr.language))
        if s.sid is None:
            s.sid = self._take_id()
        words = self._words(tr.words, tr.language, s.start / SR)
        result = SentenceResult(
            sentence_id=s.sid, begin_ms=int(s.start * 1000 / SR), end_ms=None,
            current_ms=int(audio_end * 1000 / SR), text=text_of(words),
            words=[result_word(w) for w in words], final=False, language=tr.language,
            stable_chars=stable, segment=s.index, translations=dict(s.provisional))
        s.last_result = result
        self.stats.partials_emitted += 1
        if self._open is s:
            self._maybe_translate(s, audio_end, result.text)
        if first and self.on_timing is not None:
            self.on_timing("first_partial", time.monotonic() - s.opened_at)
        trace.event(id(self), "partial_out", seg=s.index, seq=seq, first=first,
                    language=tr.language, text=result.text)
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
        words = english_words(tr.words, s.start / SR)
        text = text_of(words)
        if not words or latin_share(text) < 0.9:
            return  # Whisper echoed the source language: not a translation
        s.provisional_seq = seq
        s.provisional = {"en": Translation(text, [result_word(w) for w in words])}
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
        if (meter := getattr(self._sched, "load", None)) is not None:
            meter.sentence_closed()  # admission prices a stream's final work per sentence
        if self._boundary is not None:
            self._boundary("end", s.index, int(end * 1000 / SR))
        self._sched.drop_partials(self._translation_key(s))  # the final translation supersedes it
        self._partial_keys.discard(self._translation_key(s))
        key = (id(self), s.start)
        # Promoted also while finals keep the model busy, for a burst-sent stream: dropping it
        # there (session 8, o3) cost such a stream its only preview before each final, which the
        # wire contract and tests/protocols/test_inference_sdk.py row 6/7 expect (a burst keeps
        # the share high). A stream at real-time pace that is behind drops it (_behind).
        promoted = self._promotes_preview(s)
        if not promoted:
            self._sched.drop_partials(key)
            self._partial_keys.discard(key)
        else:
            # Keep the queued preview: a sentence recognised faster than real time (audio sent in
            # a burst) still shows one preview before its final, as at real-time pace.
            self._sched.promote(key)
            trace.event(id(self), "promote", seg=s.index)
        if s.spec_future is not None and s.spec_end == end:
            fut = s.spec_future
            s.full_final = s.spec_full
            self._count_speculation(hit=True)
        else:
            if s.spec_future is not None:
                s.spec_future.cancel()
                self._count_speculation(hit=False)
            audio, opts = self._final_audio(s, end), self._final_options(s)
            # A promoted preview may still change what the previews saw: decide after it.
            s.full_final = not promoted and self._recheck_certain(s)
            if s.full_final:
                opts = replace(opts, full_window=True)
            fut = self._submit(audio, opts, Priority.FINAL, any_lane=s.full_final)
        if self.config.translate_to:
            # Translation decodes the same audio with Whisper's translate task, in parallel.
            cfg = self.config
            s.translation_future = self._submit(
                self._buf.slice(s.start, end),
                DecodeOptions(language=cfg.language or self._stream_language,
                              allowed_languages=cfg.allowed_languages, task="translate",
                              beam_size=cfg.final_beam, full_window=True, word_timestamps=True),
                Priority.FINAL)
        trace.event(id(self), "close", seg=s.index, end_s=end / SR,
                    speculative_hit=fut is s.spec_future, speech_end_t=round(s.speech_end_at, 4),
                    final_share=round(meter.share(Priority.FINAL), 3) if meter else None)
        if self._early_recheck(s, fut):
            # Beside the short final, on any lane: the sentence then waits for the longer of the
            # two decodes, not for one after the other (RESULTS "Overload, session 10").
            s.early_full = self._submit(
                s.final_audio, replace(self._final_options(s), full_window=True),
                Priority.FINAL, any_lane=True)
            trace.event(id(self), "early_recheck", seg=s.index)
        previous = self._chain
        self._chain = self._spawn(self._finalize(s, fut, previous))

    async def _finalize(self, s: _Sentence, fut: asyncio.Future,
                        previous: asyncio.Task | None) -> None:
        try:
            await self._finalize_in_order(s, fut, previous)
        finally:
            self._drop_early(s)  # the stream went, or the final failed

    async def _finalize_in_order(self, s: _Sentence, fut: asyncio.Future,
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
        if tr is not None and not self.config.final_full_window and not s.full_final:
            tr = await self._recheck(s, tr)
            if self._closed:
                return
        if tr is None or tr.empty:
            await self._emit_empty(s, tr)
            return
        if tr.language_probability >= 0.5 and self.config.language is None:
            self._stream_language = tr.language
        # Words of the context audio belong to the sentence before (already delivered).
        words = self._words(own_words(tr.words, s.lead / SR), tr.language, (s.start - s.lead) / SR)
        if not words:
            await self._emit_empty(s, tr)
            return
        if self.config.punctuation:
            words = close_sentence(words, tr.language)
        translations = await self._translations(s)
        groups = (split_sentences(words) if self.config.semantic_punctuation and not translations
                  else [words])
        for group in groups:
            if self.done:
                return
            sid = s.sid if s.sid is not None else self._take_id()
            s.sid = None  # further groups of a split get fresh ids
            result = final_result(
                sid, group, start_ms=int(s.start * 1000 / SR),
                end_ms=int(s.end * 1000 / SR) if s.end else None, language=tr.language,
                segment=s.index, translations=translations)
            self.stats.finals_emitted += 1
            if group is groups[0] and self.on_timing is not None:
                self.on_timing("final", time.monotonic() - s.speech_end_at)
            trace.event(id(self), "final_out", seg=s.index, language=tr.language,
                        text=result.text)
            self._finals_done += 1
            if self.config.max_sentences and self._finals_done >= self.config.max_sentences:
                self.done = True
                self._open = None
                self._seg.stop()
            await self._emit(result)

    def _promotes_preview(self, s: _Sentence) -> bool:
        """Whether the sentence's close promotes its queued, never-shown preview (see _close)."""
        return not (s.emitted_partial_seq or s.partial_future is None or self._behind())

    def _recheck_certain(self, s: _Sentence) -> bool:
        """Whether a short-window final is sure to be rechecked whatever it says: a sentence too
        short to go unchecked that no shown preview saw whole (final_guard "unpreviewed": a burst,
        or previews dropped behind). Then the short decode is skipped and the full window decoded
        at once: one decode instead of a short one and a recheck queued after it (the overload
        tail: RESULTS "Overload, session 9")."""
        if (not self.full_final_when_unpreviewed or self.config.final_full_window
                or s.final_audio is None):
            return False
        shown = s.last_result.current_ms / 1000 if s.last_result else 0.0
        return preview_reason([], s.committed or s.agreement.previous, cjk=False,
                              audio_s=len(s.final_audio) / SR,
                              unseen_s=s.speech_end / SR - shown) == "unpreviewed"

    def _early_recheck(self, s: _Sentence, fut: asyncio.Future) -> bool:
        """Whether a short final's full-window recheck is asked for now, beside it, because the
        recheck is likely: "language": the previews' language was never checked on this sentence
        (carried over; a final in another language disagrees with them, final_guard "preview").
        In session 9's overload traces 41 of 71 rechecks came after such previews, and 94 of 462
        sentences had them (RESULTS "Overload, session 10"). Not when the short result is already
        in (a speculative hit: its recheck starts at once) or no recheck can follow."""
        if (self.early_recheck != "language" or self.config.final_full_window or s.full_final
                or s.final_audio is None or fut.done()
                or short_final_in_full(len(s.final_audio), self._final_options(s))):
            return False
        return s.language_unsure and s.emitted_partial_seq > 0

    def _language_switch(self, s: _Sentence, tr: Transcript) -> bool:
        """Whether the final's words cannot be compared with its previews': they were decoded in
        the language carried over from the stream's last final (never checked on this sentence)
        and came out in another script than the final's (an English sentence previewed in
        Mandarin as "它是一切大大人的生命..."), so they disagree whatever the final says: in
        session 10's first overload pair 14 of 20 rechecks were such, and each came back with
        the short final's text (RESULTS "Overload, session 10"). By script, not by language tag:
        previews forced to Mandarin also wrote "ever tried, ever failed", and there the recheck
        was right to replace the short final's "Never tried"."""
        if self.recheck_language_switch or not s.language_unsure or s.last_result is None:
            return False
        return (latin_share(s.last_result.text) >= SCRIPT_SHARE) != (
            latin_share(tr.text) >= SCRIPT_SHARE)

    def _drop_early(self, s: _Sentence) -> None:
        """The early recheck is not needed (the short final agreed with the previews)."""
        if s.early_full is not None:
            s.early_full.cancel()  # a queued decode is skipped, a running one's result ignored
            s.early_full = None
            self._count_early(used=False)

    def _count_early(self, used: bool) -> None:
        self.stats.early_rechecks_used += used
        self.stats.early_rechecks_dropped += not used
        if self.on_timing is not None:  # counted on /metrics
            self.on_timing("early_recheck_used" if used else "early_recheck_dropped", 0.0)

    async def _recheck(self, s: _Sentence, tr: Transcript) -> Transcript:
        """A short-window final that looks weak, decoded again in the full window; the better
        of the two (streaming.final_guard). Still a final's priority: it is what a user waits for."""
        reason = weak_reason(tr, (s.speech_end - s.start) / SR, s.lead / SR)
        if reason is None and s.final_audio is not None:
            # Its first words are not what the previews showed: a near-tie (final_guard).
            reason = preview_reason([w.text for w in own_words(tr.words, s.lead / SR)],
                                    s.committed or s.agreement.previous,
                                    cjk=is_cjk(tr.language), audio_s=len(s.final_audio) / SR,
                                    unseen_s=s.speech_end / SR - (s.last_result.current_ms / 1000
                                                                  if s.last_result else 0.0))
            if reason == "preview" and self._language_switch(s, tr):
                trace.event(id(self), "recheck_skipped", seg=s.index, reason="language_switch")
                reason = None
        if reason is None or s.final_audio is None:
            self._drop_early(s)
            return tr
        if short_final_in_full(len(s.final_audio), self._final_options(s)):
            return tr  # the backend already decoded this short a final in the full window
        early, s.early_full = s.early_full, None
        if early is not None:
            self._count_early(used=True)
        self.stats.final_rechecks += 1
        if self.on_timing is not None:
            self.on_timing("final_recheck", 0.0)  # counted on /metrics
        log.debug("short-window final rechecked in the full window (%s)", reason)
        try:
            # Any lane: the idle second replica takes it at once instead of it queueing behind
            # the main lane's finals (the overload tail, RESULTS "Overload, session 9").
            recheck = early if early is not None else self._submit(
                s.final_audio, replace(self._final_options(s), full_window=True), Priority.FINAL,
                any_lane=True)
            trace.event(id(self), "recheck", seg=s.index, reason=reason, early=early is not None)
            full: Transcript | None = await recheck
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the short-window result stands
            log.warning("full-window recheck failed: %s", exc)
            return tr
        kept = better(tr, full, s.lead / SR, prompted=bool(self.config.hotwords))
        trace.event(id(self), "recheck_result", seg=s.index, short=tr.text,
                    full=full.text if full is not None else None, kept_full=kept is full)
        return kept

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
        # Whisper translates into English only; the protocol layer refuses other targets.
        return {"en": final_translation(tr.words, s.start / SR)}

    async def _emit_empty(self, s: _Sentence, tr: Transcript | None) -> None:
        """A segment VAD heard but that held no words (noise, a cough): only if asked for."""
        trace.event(id(self), "final_empty", seg=s.index)
        if not self.config.report_empty_finals:
            return
        end = s.end if s.end is not None else s.start
        await self._emit(SentenceResult(
            sentence_id=s.sid or 0, begin_ms=int(s.start * 1000 / SR), end_ms=int(end * 1000 / SR),
            current_ms=int(end * 1000 / SR), text="", words=[], final=True,
            language=tr.language if tr else None, segment=s.index))

    # -- helpers --------------------------------------------------------------------------------
    def _words(self, words: list[Word], language: str, offset_s: float) -> list[Word]:
        """Decoded words in stream time, with the request's text options and hot words."""
        cfg = self.config
        return sentence_words(words, offset_s, language, remove_fillers=cfg.remove_disfluencies,
                              punctuation=cfg.punctuation, hotwords=cfg.hotwords)

    def _behind(self) -> bool:
        """Previews degrade first: the stream's audio arrives at real-time pace or slower (not
        a burst) and finals keep the model busy, so its closing sentence's never-shown preview
        is dropped, not promoted to one more final-priority decode queued ahead of other
        streams' finals (8 streams: 47 of 48 sentences; RESULTS "Overload, session 8")."""
        return (self.drop_previews_when_behind and self._pace.ahead_s() <= BURST_AHEAD_S
                and self._finals_busy())

    def _finals_busy(self) -> bool:
        """No speculative final ahead of the pause limit: the model is full with finals."""
        meter = getattr(self._sched, "load", None)  # scheduler stand-ins in tests may have none
        return meter is not None and meter.finals_busy(
            max(self.speculate_max_final_share, SPECULATE_OFF_FINAL_SHARE))

    def _finals_loaded(self) -> bool:
        """A speculative final only later in the pause (segmenter.BUSY_SPECULATIVE_SILENCE_MS)."""
        meter = getattr(self._sched, "load", None)
        return meter is not None and meter.finals_busy(self.speculate_max_final_share)

    def _count_speculation(self, hit: bool) -> None:
        if hit:
            self.stats.speculative_hits += 1
        else:
            self.stats.speculative_misses += 1
        if self.on_timing is not None:
            self.on_timing("speculative_hit" if hit else "speculative_miss", 0.0)  # /metrics

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

