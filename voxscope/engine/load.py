"""How loaded one inference scheduler is, measured over a sliding window of wall time.

Admission control (voxscope.service.admission) reads it: a realtime stream is only worth admitting
if the model can still serve every admitted stream's finals in time. Two measures:

- `share(priority)`: the fraction of the last `window_s` seconds the model thread spent decoding
  work of that class (realtime finals are what cannot degrade: previews are coalesced and paced);
- `final_wait()`: how long realtime finals waited in the queue before their decode started
  (mean over the window), or how long the oldest one queued now has waited, whichever is longer;
- `final_decode_s`: model time one final takes (smoothed), which prices a stream before it has
  run long enough to be measured;
- `final_sentence_s()`: model time spent on final-priority work per sentence closed over the
  window: one final, plus what the sentence cost besides (speculative finals at pauses speech
  resumed over, short-window rechecks, translations), so admission prices what a stream costs.

Pure bookkeeping with an injectable clock, so the admission rule can be unit-tested without a model.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from voxscope.engine.types import DecodeOptions, Priority


class LoadMeter:
    def __init__(self, window_s: float = 15.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = max(window_s, 0.1)
        self.clock = clock
        self._lock = threading.Lock()  # written by the worker thread, read by the event loop
        self._busy: deque[tuple[float, float, Priority]] = deque()  # (start, end, class)
        self._waits: deque[tuple[float, float]] = deque()  # (decode start, queue wait) of finals
        self.oldest_final: Callable[[], float | None] = lambda: None  # submit time of a queued final
        self.final_decode_s: float | None = None  # smoothed model time per final (batch / size)
        self._closed: deque[float] = deque()  # times realtime sentences closed (asked for a final)
        self._sentence_s: float | None = None  # the last final_sentence_s() measured

    def record(self, start: float, end: float, priority: Priority,
               final_waits: list[float] | None = None) -> None:
        """One decoded batch: its wall-time span, its class and the queue waits of its finals."""
        with self._lock:
            self._busy.append((start, end, priority))
            for w in final_waits or ():
                self._waits.append((start, w))
            if final_waits:
                per = (end - start) / len(final_waits)
                self.final_decode_s = (per if self.final_decode_s is None
                                       else 0.8 * self.final_decode_s + 0.2 * per)
            self._prune(end)

    def sentence_closed(self) -> None:
        """A realtime sentence closed: its final (and whatever else it cost) is asked for."""
        now = self.clock()
        with self._lock:
            self._closed.append(now)
            self._prune(now)

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        while self._busy and self._busy[0][1] <= horizon:
            self._busy.popleft()
        while self._waits and self._waits[0][0] <= horizon:
            self._waits.popleft()
        while self._closed and self._closed[0] <= horizon:
            self._closed.popleft()

    def final_sentence_s(self) -> float | None:
        """Final-priority model seconds per sentence closed over the window (see the module
        docstring). With fewer than MIN_SENTENCES closed in it (too few to say) the last such
        measure, None before the first: falling back to one final's time while streams are
        still arriving would price them at half their cost between two measures."""
        busy = self.share(Priority.FINAL) * self.window_s
        with self._lock:
            if len(self._closed) >= MIN_SENTENCES:
                self._sentence_s = busy / len(self._closed)
            return self._sentence_s

    def sentences_closed(self) -> int:
        """Realtime sentences closed over the window (admission's measured sentence rate)."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            return len(self._closed)

    def share(self, *classes: Priority) -> float:
        """Fraction of the window the model spent decoding work of `classes` (0..1)."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            horizon = now - self.window_s
            busy = sum(min(end, now) - max(start, horizon)
                       for start, end, p in self._busy if p in classes)
        return min(max(busy / self.window_s, 0.0), 1.0)

    def finals_busy(self, share: float) -> bool:
        """Whether realtime finals take at least `share` of model time (>= 1: never). Speculation
        and preview batching degrade at the same threshold (`speculate_max_final_share`)."""
        return share < 1.0 and self.share(Priority.FINAL) >= share

    def final_wait(self) -> float:
        """Seconds realtime finals wait for the model now (see the module docstring)."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            waits = [w for _, w in self._waits]
        mean = sum(waits) / len(waits) if waits else 0.0
        oldest = self.oldest_final()
        return max(mean, now - oldest if oldest is not None else 0.0)


# final_sentence_s() needs this many sentences closed in the window: with fewer, one sentence's
# final decoded in the window while the sentence closed before it would count double.
MIN_SENTENCES = 4

# Above this share of model time on realtime finals (over the window), no speculative final ahead
# of the pause limit (engine/streaming/segmenter.py): at the floor (240 ms) most pauses are breaths
# (the 8-stream overload run decoded 94 finals for 48 sentences), and every wasted final delays the
# other streams' finals. Below it (1 stream uses ~0.05-0.1) speculation is as before. 0.5, not
# lower: 4 streams run at 0.2-0.3 with bursts to 0.7, and there speculation's head start is worth
# more than its misses (4 streams, 0.4: final p50 +1 s in one run; benchmarks/RESULTS.md, session 7).
SPECULATE_MAX_FINAL_SHARE = 0.5
# Up to this share (when above SPECULATE_MAX_FINAL_SHARE) the speculative final would still be
# asked for, only later in the pause (segmenter.BUSY_SPECULATIVE_SILENCE_MS). Tried in session 9
# at 0.8 for the 4-stream target and **off by default** (0: the band ends where it starts, at the
# configured `speculate_max_final_share`, session 8's rule, whatever that is set to; a default of
# 0.5 switched the band on for any share configured below it): at 4 streams it gained nothing
# measurable, at 8 offered streams the extra speculative decodes kept the model behind (final
# share p50 0.49 -> 0.78, finals p50 3.1 -> 7.1 s, same run; benchmarks/RESULTS.md, "4-stream
# finals and the short default (session 9)").
# VOXSCOPE_SPECULATE_OFF_FINAL_SHARE=0.8: the band, for measurements.
SPECULATE_OFF_FINAL_SHARE = float(os.environ.get("VOXSCOPE_SPECULATE_OFF_FINAL_SHARE", "0"))

# Model time of a realtime final decoded in a short window (audio + 1 s) over that of the start-up
# decode below (2 s of silence in a 30 s window). Measured on the real clips, same process, beam 5,
# word timestamps: 0.29-0.62 s short-window finals vs 1.5-2.0 s for the silent 30 s decode (0.23
# of it), in-process CPU 7.2 vs 19.6 s for the same clips' 30 s-window finals (0.37); 0.35 errs
# high, and real finals correct it within a few sentences. Silence itself cannot be timed in a
# short window: 5 s of it decodes to no tokens (0.1 s), 2 s to a hallucinated "1.0" and a
# temperature fallback (2 s). Since finals on less than 4 s of audio are decoded in the full window
# (streaming.final_guard.short_final_in_full), the final decodes of one bench_final_window run (47,
# speculative ones included) cost 0.76 of the same decodes all in 30 s windows, in-process CPU
# (42.9 vs 56.7 s; short windows alone 0.55): 0.75 (RESULTS, "Short finals ... session 7").
SHORT_FINAL_SHARE = 0.75


def calibrate(backend, meter: LoadMeter, full_window: bool = True) -> float:
    """Time one final-shaped decode (30 s window, beam search) before traffic arrives, so admission
    can price streams from the first one on; it also warms the model up (the first decode pays
    one-time kernel set-up, so this errs high, and real finals correct it). With short final
    windows (`full_window` False) a final costs SHORT_FINAL_SHARE of that: pricing a stream at
    the 30 s decode would refuse streams the machine can serve. `backend` is a WhisperBackend
    (duck-typed: decode_batch)."""
    opts = DecodeOptions(beam_size=5, full_window=True, word_timestamps=True)
    start = time.monotonic()
    backend.decode_batch([(np.zeros(32000, dtype=np.float32), opts)])
    took = time.monotonic() - start
    meter.final_decode_s = took if full_window else took * SHORT_FINAL_SHARE
    return meter.final_decode_s
