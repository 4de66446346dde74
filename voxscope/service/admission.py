"""Admission of new realtime streams by measured load: refuse the stream that would overload the
model instead of letting every admitted stream's finals lag without bound.

`max_sessions` is a fixed ceiling; this rule refuses earlier when the schedulers' measured load
(voxscope.engine.load) says one more stream would push finals past their target:

- the share of model time spent on realtime finals, projected to one more stream, stays under
  `max_load` (previews are not counted: they are coalesced and paced, so they degrade first);
- realtime finals do not already wait more than `max_final_wait_s` for the model.

A stream's final cost is learned from the measurement (final share / stream-windows measured),
starts at `stream_cost`, and is never below the model's measured final work per sentence (one
final at first, then everything final-priority a sentence cost: speculative misses, rechecks)
times the sentences per second a stream closes (measured over the window once enough closed,
`sentence_rate` before), so streams that start together are counted before they have produced load.
The first stream is always admitted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from voxscope.engine.load import MIN_SENTENCES, LoadMeter
from voxscope.engine.types import Priority


@dataclass
class LoadReading:
    final_share: float  # 0..1 of wall time, summed over models (they share the cores)
    preview_share: float
    final_wait_s: float  # the worst model's
    final_decode_s: float | None = None  # model time per final (the slowest model's), if known
    final_sentence_s: float | None = None  # final work per sentence closed (the dearest model's)
    sentences_closed: int = 0  # realtime sentences closed over the window, summed over models


def read_loads(meters: Iterable[LoadMeter]) -> LoadReading:
    meters = list(meters)
    return LoadReading(final_share=sum(m.share(Priority.FINAL) for m in meters),
                       preview_share=sum(m.share(Priority.PARTIAL) for m in meters),
                       final_wait_s=max((m.final_wait() for m in meters), default=0.0),
                       final_decode_s=max((m.final_decode_s for m in meters
                                           if m.final_decode_s is not None), default=None),
                       final_sentence_s=max((v for m in meters
                                             if (v := m.final_sentence_s()) is not None),
                                            default=None),
                       sentences_closed=sum(m.sentences_closed() for m in meters))


@dataclass
class Admission:
    read: Callable[[], LoadReading]
    max_load: float = 0.9  # <= 0: admission by measured load is off (max_sessions only)
    max_final_wait_s: float = 3.0
    stream_cost: float = 0.08  # prior share of model time one stream's finals take
    sentence_rate: float = 0.2  # sentences per second one stream is assumed to finalize
    window_s: float = 15.0  # the meters' window: a stream older than this is fully measured
    clock: Callable[[], float] = time.monotonic
    cost: float = field(init=False)  # learned per-stream final share
    rate: float = field(init=False)  # sentences/s per stream the last check priced a stream at
    refused: int = 0

    def __post_init__(self) -> None:
        self.cost = self.stream_cost
        self.rate = self.sentence_rate

    def check(self, stream_starts: list[float]) -> str | None:
        """None if one more stream may start beside those started at `stream_starts`
        (monotonic times), else why not."""
        if self.max_load <= 0 or not stream_starts:
            return None
        load = self.read()
        now = self.clock()
        n = len(stream_starts)
        # Stream-windows measured: a stream that started half a window ago counts as half.
        present = sum(min(max(now - t, 0.0) / self.window_s, 1.0) for t in stream_starts)
        if present >= 1.0:
            self.cost = 0.7 * self.cost + 0.3 * (load.final_share / present)
        # Never price a stream below what its sentences cost at the model's measured speed: the
        # share measured lags behind streams that have just started talking. A sentence costs
        # the final work measured per sentence closed (speculative misses, rechecks included)
        # once enough closed; before that one final's time (calibrated at start-up).
        cost = self.cost
        per_sentence = load.final_sentence_s or load.final_decode_s
        # Sentences per second per stream: measured once the window holds enough closed sentences
        # and a window's worth of streams (the bench's streams close 0.086/s, 0.2 priced them at
        # twice their cost: 5 of 8 admitted where 8 kept a better p95), else `sentence_rate`.
        self.rate = self.sentence_rate
        if load.sentences_closed >= MIN_SENTENCES and present >= 1.0:
            self.rate = load.sentences_closed / self.window_s / present
        if per_sentence is not None:
            cost = max(cost, per_sentence * self.rate)
        projected = max(load.final_share, n * cost) + cost
        if projected > self.max_load:
            self.refused += 1
            return (f"measured load: {n} streams use {load.final_share:.0%} of the model for "
                    f"finals, one more would need ~{projected:.0%} (limit {self.max_load:.1%})")
        if load.final_wait_s > self.max_final_wait_s:
            self.refused += 1
            return (f"measured load: sentence finals wait {load.final_wait_s:.1f} s for the "
                    f"model (limit {self.max_final_wait_s:.1f} s)")
        return None


class AdmissionCollector(Collector):
    """/metrics: the measured load admission decides by, read at scrape time."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self._families(LoadReading(0.0, 0.0, 0.0))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return self._families(self.admission.read())

    def _families(self, load: LoadReading) -> list[GaugeMetricFamily]:
        a = self.admission
        out = []
        for name, doc, value in (
            ("voxscope_load_final_share", "Share of wall time the model spent decoding realtime "
             "finals over the admission window", load.final_share),
            ("voxscope_load_preview_share", "Share of wall time the model spent decoding realtime "
             "previews over the admission window", load.preview_share),
            ("voxscope_load_final_wait_seconds", "How long realtime finals wait for the model "
             "(window mean, or the oldest queued one)", load.final_wait_s),
            ("voxscope_load_stream_cost", "Learned share of model time one stream's finals take",
             a.cost),
            ("voxscope_load_final_decode_seconds", "Model time one realtime final takes "
             "(smoothed; 0 until measured)", load.final_decode_s or 0.0),
            ("voxscope_load_final_sentence_seconds", "Model time spent on final-priority work "
             "per realtime sentence closed over the window (0 until measured)",
             load.final_sentence_s or 0.0),
            ("voxscope_load_sentence_rate", "Sentences per second one stream is priced at "
             "(measured over the window once enough closed, else admit_sentence_rate)", a.rate),
            ("voxscope_load_admission_limit", "Projected final share above which new streams are "
             "refused (0: off)", a.max_load),
            ("voxscope_load_refused_streams", "Streams refused by measured load (since start)",
             float(a.refused)),
        ):
            fam = GaugeMetricFamily(name, doc)
            fam.add_metric([], value)
            out.append(fam)
        return out
