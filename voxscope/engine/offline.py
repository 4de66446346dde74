"""Whole-file transcription: VAD-cut windows of at most 30 s, decoded in batches.

Audio is consumed as an iterator of chunks, so an hours-long file never sits in memory: only the
audio of windows not yet decoded is kept. Silence between speech is never decoded and windows are
batched; how much faster than plain faster-whisper that is depends on how much silence a file has
(see benchmarks/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher

import numpy as np

from voxscope.engine.hotwords import Hotword, apply_hotwords
from voxscope.engine.scheduler import InferenceScheduler
from voxscope.engine.text import SENTENCE_END, close_sentence, finalize_words, is_cjk, letters
from voxscope.engine.types import SAMPLE_RATE, DecodeOptions, Priority, Transcript, Word
from voxscope.engine.vad import FRAME_SAMPLES, SileroVad
from voxscope.engine.whisper_backend import (
    COMPRESSION_RATIO_THRESHOLD,
    NO_SPEECH_THRESHOLD,
)

SR = SAMPLE_RATE
GAP_MIN_S = 0.8  # a speech region this long that got no words is decoded again on its own
PREVIOUS_CHARS = 200  # previous text given to a conditioned window (the tail)
# A first-pass window whose avg_logprob is below this (or that needed a temperature fallback) is
# decoded again with the text before it as the prompt (see benchmarks/RESULTS.md).
REPAIR_LOGPROB = -0.5
# A repair that adds this many letters (Chinese: characters) in a row to the first pass, all
# found in its prompt, copied the context instead of transcribing the audio.
COPY_LETTERS = 8
SENTENCE_PAUSE_S = 0.5  # between VAD regions (padding excluded): may end an unpunctuated sentence


@dataclass
class Sentence:
    begin: float  # seconds from the start of the file
    end: float
    text: str
    words: list[Word]
    language: str


@dataclass
class OfflineOptions:
    language: str | None = None
    allowed_languages: tuple[str, ...] | None = None
    task: str = "transcribe"
    prompt: str | None = None
    hotwords: tuple[Hotword, ...] = ()
    vad_threshold: float = 0.5
    min_silence_ms: int = 600  # a pause at least this long separates speech regions
    speech_pad_ms: int = 200
    max_window_s: float = 29.0
    batch: int = 4  # windows in flight at once (lets the scheduler batch them)
    # Keep the text before a window as its context where it matters: every window is first
    # decoded without context (batched), and a window that looks weak (avg_logprob below
    # `repair_logprob` or a temperature fallback) is decoded again prompted with the text before
    # it; the repair is kept only if it is confident, needed no fallback and did not copy its
    # prompt. Conditioning every window one after another cost 1.5-3.9x the CPU and copied
    # prompts on repetitive speech (benchmarks/RESULTS.md).
    condition_on_previous_text: bool = False
    repair_logprob: float = REPAIR_LOGPROB
    # Whisper's sampling retry of a degenerate window. CTranslate2 samples from a generator per
    # thread that cannot be reseeded, so its output differs from run to run: a file task turns it
    # off (a resumed task must decode exactly as its first attempt did) and relies on the
    # deterministic repair pass above for weak windows instead.
    temperature_fallback: bool = True
    # Text already transcribed before the first chunk (a resumed task: `context_of` its saved
    # sentences), so the first window is conditioned exactly as in an uninterrupted run.
    previous_text: str = ""
    # Samples at the start of the audio that were transcribed already (a resumed task starts a
    # little early, on the VAD frame grid of the whole file, so VAD cuts the same windows): they
    # go through VAD but no window starts before them.
    skip_samples: int = 0
    punctuation: bool = True
    remove_disfluencies: bool = False


@dataclass
class _Window:
    start: int
    end: int
    audio: np.ndarray
    regions: list[tuple[int, int]]
    future: Future | None = None


@dataclass
class _Segmenter:
    """Incremental VAD segmentation into windows of speech no longer than max_window_s."""

    vad: SileroVad
    opts: OfflineOptions
    frames: int = 0
    region_start: int | None = None
    last_voice: int = 0
    window_start: int | None = None
    window_end: int = 0
    closed: list[tuple[int, int, list[tuple[int, int]]]] = field(default_factory=list)
    regions: list[tuple[int, int]] = field(default_factory=list)  # speech in the open window

    def __post_init__(self) -> None:
        self.stream = self.vad.stream()

    def feed(self, pcm: np.ndarray,
             final: bool = False) -> list[tuple[int, int, list[tuple[int, int]]]]:
        probs = self.stream.process(pcm)
        if final:
            probs = np.concatenate([probs, self.stream.flush()])
        pad = self.opts.speech_pad_ms * SR // 1000
        gap = self.opts.min_silence_ms * SR // 1000
        max_len = int(self.opts.max_window_s * SR)
        for p in probs:
            fs = self.frames * FRAME_SAMPLES
            self.frames += 1
            fe = fs + FRAME_SAMPLES
            if p >= self.opts.vad_threshold:
                if self.region_start is None:
                    self.region_start = max(fs - pad, self.window_end)
                self.last_voice = fe
            elif self.region_start is not None and fe - self.last_voice >= gap:
                self._add_region(self.region_start, self.last_voice + pad, max_len)
                self.region_start = None
            if self.region_start is not None and fe - self.region_start >= max_len:
                # One long stretch of speech: cut it at the window limit.
                self._add_region(self.region_start, fe, max_len)
                self.region_start = fe
        if final:
            if self.region_start is not None:
                self._add_region(self.region_start, self.last_voice + pad, max_len)
                self.region_start = None
            if self.window_start is not None:
                self.closed.append((self.window_start, self.window_end, self.regions))
                self.window_start, self.regions = None, []
        out, self.closed = self.closed, []
        return out

    def _add_region(self, start: int, end: int, max_len: int) -> None:
        if end <= start:
            return
        if self.window_start is not None and end - self.window_start > max_len:
            self.closed.append((self.window_start, self.window_end, self.regions))
            self.window_start, self.regions = None, []
        if self.window_start is None:
            self.window_start = start
        self.regions.append((start, end))
        self.window_end = end


def transcribe_chunks(chunks: Iterable[np.ndarray], scheduler: InferenceScheduler,
                      vad: SileroVad, opts: OfflineOptions,
                      progress: Callable[[float], None] | None = None,
                      checkpoint: Callable[[float], None] | None = None,
                      priority: Priority = Priority.SYNC) -> Iterator[Sentence]:
    """Yield sentences in order as windows finish. `progress` gets seconds of audio consumed;
    `checkpoint` gets a position (seconds) before which every sentence has been yielded, so a
    run restarted there (on the audio from that point) loses and repeats nothing. `priority` is
    the work class of every window (Priority.FILE for async file tasks: below realtime)."""
    seg = _Segmenter(vad, opts)
    seg.window_end = opts.skip_samples
    buf = np.zeros(0, dtype=np.float32)
    buf_start = 0  # absolute sample index of buf[0]
    inflight: list[_Window] = []
    decode = DecodeOptions(language=opts.language, allowed_languages=opts.allowed_languages,
                           task=opts.task, beam_size=5, full_window=True, word_timestamps=True,
                           prompt=opts.prompt, hotwords=opts.hotwords,
                           temperature_fallback=opts.temperature_fallback)

    previous = opts.previous_text  # text of the sentences yielded so far (conditioned mode)

    def submit(windows: list[tuple[int, int, list[tuple[int, int]]]]) -> None:
        for start, end, regions in windows:
            audio = buf[max(start - buf_start, 0): max(end - buf_start, 0)].copy()
            w = _Window(start, end, audio, regions)
            w.future = scheduler.submit(audio, decode, priority)
            inflight.append(w)

    def window_sentences(w: _Window) -> list[Sentence]:
        nonlocal previous
        assert w.future is not None
        tr = w.future.result()
        if opts.condition_on_previous_text and previous and _weak(tr, opts.repair_logprob):
            # Repair pass: the context is the text of the sentences yielded so far, which a
            # resumed task rebuilds from what it saved, so a resumed run repairs identically.
            before = previous[-PREVIOUS_CHARS:]
            context = " ".join(x for x in (opts.prompt, before) if x)
            repaired = scheduler.submit(w.audio, replace(decode, prompt=context),
                                        priority).result()
            if _repair_holds(tr, repaired, before):
                tr = repaired
        raw = [x.shifted(w.start / SR) for x in tr.words] if tr is not None else []
        recovered = _recover_gaps(w, raw, scheduler, decode, priority)
        raw = sorted(_after_recovered(raw, recovered, w.regions)
                     + [x for ws in recovered for x in ws],
                     key=lambda x: x.start)
        if not raw:
            return []
        language = tr.language if tr is not None and not tr.empty else (opts.language or "")
        words = finalize_words(raw, language, simplified=True,
                               remove_fillers=opts.remove_disfluencies,
                               punctuation=opts.punctuation)
        breaks = [a[1] / SR for a, b in zip(w.regions, w.regions[1:], strict=False)
                  if b[0] - a[1] >= SENTENCE_PAUSE_S * SR]
        out = list(_sentences(apply_hotwords(words, opts.hotwords), language, breaks,
                              opts.punctuation))
        # The context is built from the sentences (not the raw window text) so that a resumed
        # task can rebuild it from what it saved and decode exactly as if never interrupted.
        previous = context_of([s.text for s in out], previous)
        return out

    frontier = 0  # no window will start before this sample (audio not yet cut into windows)

    def drain(keep: int) -> Iterator[Sentence]:
        while inflight and len(inflight) > keep:
            yield from window_sentences(inflight.pop(0))
            # Windows are cut in order and never overlap: all audio before the first window
            # still in flight (or still being collected) has now been yielded.
            if checkpoint:
                checkpoint(min([frontier] + [w.start for w in inflight]) / SR)

    total = 0
    for chunk in chunks:
        buf = np.concatenate([buf, chunk.astype(np.float32, copy=False)])
        total += chunk.size
        submit(seg.feed(chunk))
        # Keep only audio that a future window may still need.
        keep_from = seg.window_start if seg.window_start is not None else (
            seg.region_start if seg.region_start is not None else
            total - opts.speech_pad_ms * SR // 1000 - FRAME_SAMPLES)
        keep_from = min(max(keep_from, buf_start), total)
        buf = buf[keep_from - buf_start:]
        buf_start = frontier = keep_from
        yield from drain(opts.batch)
        if checkpoint and not inflight:
            # silence: nothing in flight, progress still moves on (never back into the audio a
            # resumed run goes over again for VAD)
            checkpoint(max(frontier, opts.skip_samples) / SR)
        if progress:
            progress(total / SR)
    submit(seg.feed(np.zeros(0, dtype=np.float32), final=True))
    frontier = total
    yield from drain(0)
    if checkpoint:
        checkpoint(total / SR)


def context_of(texts: Iterable[str], previous: str = "") -> str:
    """The previous-text context after `texts` (sentence texts, in order) follow `previous`."""
    for text in texts:
        if text.strip():
            previous = (previous + " " + text.strip()).strip()[-4 * PREVIOUS_CHARS:]
    return previous


def _weak(tr: Transcript | None, threshold: float) -> bool:
    """Whether a first-pass window deserves the conditioned repair: unsure (avg_logprob below
    `threshold`), looping (its text was dropped for its compression ratio) or a sampled fallback;
    not when the model judged the window silent (a prompt over silence gets copied)."""
    if tr is None or tr.no_speech_prob > NO_SPEECH_THRESHOLD:
        return False
    return (tr.temperature > 0 or tr.avg_logprob < threshold
            or tr.compression_ratio > COMPRESSION_RATIO_THRESHOLD)


def _repair_holds(first: Transcript, repaired: Transcript | None, context: str) -> bool:
    """Whether a conditioned repair replaces the first pass: it must be more confident, need no
    temperature fallback (faster-whisper drops the prompt after one: `prompt_reset_on_temperature`)
    and not have copied its prompt: no stretch of COPY_LETTERS or more that the repair wrote and
    the first pass did not may be found in the context (the copies seen when every window was
    conditioned: the context's last sentence written again at the window's start)."""
    if repaired is None or repaired.empty or repaired.temperature > 0:
        return False
    if not first.empty and repaired.avg_logprob <= first.avg_logprob:
        return False
    new, old, ctx = letters(repaired.text), letters(first.text), letters(context)
    ops = SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    return not any(op in ("insert", "replace") and j2 - j1 >= COPY_LETTERS and new[j1:j2] in ctx
                   for op, _i1, _i2, j1, j2 in ops)


def _recover_gaps(w: _Window, words: list[Word], scheduler: InferenceScheduler,
                  decode: DecodeOptions, priority: Priority = Priority.SYNC) -> list[list[Word]]:
    """Decode again the speech regions of a window that the window's transcript skipped.

    Whisper sometimes jumps over a stretch of a long window (its timestamps leap ahead) and the
    text of that stretch is simply missing. VAD knows where the speech was: a region of at least
    GAP_MIN_S with no word in it gets its own decode, so nothing said is lost. Returns the words
    of each region decoded again (one list per region, none for a region that gave nothing).
    """
    missing = []
    for start, end in w.regions:
        a, b = start / SR, end / SR
        # A word stretched over seconds is the aligner papering over the skipped stretch.
        if b - a >= GAP_MIN_S and not any(x.start < b and x.end > a and x.end - x.start <= 1.5
                                          for x in words):
            audio = w.audio[max(start - w.start, 0): max(end - w.start, 0)]
            missing.append((a, scheduler.submit(audio, decode, priority)))
    recovered: list[list[Word]] = []
    for offset, fut in missing:
        tr = fut.result()
        if tr is not None and not tr.empty and tr.words:
            recovered.append([x.shifted(offset) for x in tr.words])
    return recovered


def _after_recovered(words: list[Word], recovered: list[list[Word]],
                     regions: list[tuple[int, int]]) -> list[Word]:
    """The window's words, those that overlap a recovered stretch moved to just after it.

    Where Whisper skipped a stretch, the aligner stretches the word written after the skip back
    over it (its first word starts where the word before the skip ended: "甚@149.5-153.5
    至@153.5-157.5" over a skipped 150.9-154.9 s sentence). Sorted by start time, such words
    landed inside the recovered sentence ("甚我认为跑步……给我至带来了身体健康": about 1 point of
    CER on bench_file_throughput's Mandarin file). Whisper's own order puts them after it: at the
    next speech region (VAD), so a pause still splits the sentences there, if it starts before
    the next word that stays where it is.
    """
    def overlaps(x: Word) -> list[Word] | None:
        return next((ws for ws in recovered if x.end > ws[0].start and x.start < ws[-1].end),
                    None)

    out = []
    for i, x in enumerate(words):
        if (hit := overlaps(x)) is not None:
            stay = next((y.start for y in words[i + 1:] if overlaps(y) is None), float("inf"))
            # after every recovered stretch before that word (a sentence may be two regions)
            last = max((ws[-1].end for ws in recovered
                        if ws[0].start < stay and ws[-1].end > x.start), default=hit[-1].end)
            target = next((a / SR for a, _ in regions if last <= a / SR < stay), last)
            x = replace(x, start=target, end=max(x.end, target))
        out.append(x)
    return out


def _sentences(words: list[Word], language: str, breaks: list[float],
               punctuation: bool = True) -> Iterator[Sentence]:
    """Sentences end at sentence punctuation; where the model wrote none (often in Chinese), at a
    pause VAD found between two words (`breaks`: ends of speech regions, seconds), and then they
    are closed with a full stop like DashScope's are."""
    group: list[Word] = []
    cjk = is_cjk(language)  # Whisper punctuates other languages itself
    for i, w in enumerate(words):
        group.append(w)
        nxt = words[i + 1] if i + 1 < len(words) else None
        if w.punctuation and w.punctuation[-1] in SENTENCE_END:
            yield _sentence(group, language)
            group = []
        elif nxt is None or (cjk and not w.punctuation and any(
                (w.start + w.end) / 2 < b <= (nxt.start + nxt.end) / 2 for b in breaks)):
            yield _sentence(close_sentence(group, language) if punctuation else group, language)
            group = []


def _sentence(words: list[Word], language: str) -> Sentence:
    text = " ".join("".join(w.raw for w in words).split())
    return Sentence(words[0].start, words[-1].end, text, list(words), language)
