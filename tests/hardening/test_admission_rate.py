"""Admission prices a stream at the sentence rate streams are measured to close, not a fixed one
(issue 12, Overload), without a model or a server: a fake clock drives the load meter
(engine/load.py) and the rule (service/admission.py).

`admit_sentence_rate` (0.2/s) priced the bench's streams (0.086 sentences/s) at twice their final
work: 5 of 8 admitted on the quiet machine where all 8 kept a better final p95.
"""

from __future__ import annotations

import pytest

from voxscope.engine.load import MIN_SENTENCES, LoadMeter
from voxscope.engine.types import Priority
from voxscope.service.admission import Admission, read_loads

WINDOW_S = 15.0


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _measured(clock: Clock, streams: int, rate: float, per_sentence_s: float) -> LoadMeter:
    """A meter that saw `streams` streams close `rate` sentences/s each over the last window,
    each sentence costing `per_sentence_s` of final-priority model time."""
    meter = LoadMeter(WINDOW_S, clock)
    closed = round(streams * rate * WINDOW_S)
    t0 = clock.t
    for k in range(closed):
        clock.t = t0 - WINDOW_S + (k + 0.5) * WINDOW_S / closed
        meter.sentence_closed()
        meter.record(clock.t - per_sentence_s, clock.t, Priority.FINAL, [0.0])
    clock.t = t0
    return meter


def test_measured_sentence_rate_prices_a_stream():
    clock = Clock()
    meter = _measured(clock, streams=6, rate=0.086, per_sentence_s=1.0)
    assert meter.final_sentence_s() == pytest.approx(1.0, rel=0.1)
    a = Admission(lambda: read_loads([meter]), max_load=0.9, sentence_rate=0.2,
                  window_s=WINDOW_S, clock=clock)
    starts = [clock.t - 60.0] * 6  # six streams, each measured for a whole window
    # Priced at 0.2 sentences/s: 6 x 0.2 + 0.2 = 1.4 > 0.9, the seventh was refused; at the
    # measured 0.086/s: ~0.52 + 0.086, it fits.
    assert a.check(starts) is None
    assert a.rate == pytest.approx(0.086, rel=0.15)


def test_configured_rate_until_enough_sentences_closed():
    clock = Clock()
    meter = LoadMeter(WINDOW_S, clock)
    for _ in range(MIN_SENTENCES - 1):
        meter.sentence_closed()
    meter.record(clock.t - 1.0, clock.t, Priority.FINAL, [0.0])
    a = Admission(lambda: read_loads([meter]), max_load=0.9, sentence_rate=0.2,
                  window_s=WINDOW_S, clock=clock)
    a.check([clock.t - 60.0] * 2)
    assert a.rate == 0.2  # too few sentences to say: the configured rate stands


def test_a_faster_measured_rate_prices_higher():
    """Streams that close sentences faster than the configured rate cost more: the measure
    also refuses earlier, not only later."""
    clock = Clock()
    meter = _measured(clock, streams=4, rate=0.3, per_sentence_s=0.6)
    a = Admission(lambda: read_loads([meter]), max_load=0.85, stream_cost=0.01,
                  sentence_rate=0.2, window_s=WINDOW_S, clock=clock)
    # At 0.2/s: max(0.72, 4 x 0.12) + 0.12 = 0.84, admitted; at the measured 0.3/s:
    # max(0.72, 4 x 0.18) + 0.18 = 0.90 > 0.85, refused.
    why = a.check([clock.t - 60.0] * 4)
    assert why is not None and "measured load" in why
    assert a.rate == pytest.approx(0.3, rel=0.1)
