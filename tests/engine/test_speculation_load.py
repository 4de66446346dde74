"""Speculative finals under load and what admission charges for them (issue 12, Overload), without
the model or the wall clock: scripted VAD probabilities, a scheduler stand-in and a load meter on a
fake clock.

- While realtime finals take at least `speculate_max_final_share` of model time, no final is asked
  for ahead of the pause limit: a breath inside a sentence costs no decode, and the sentence still
  gets exactly one final (at the limit). Below it, speculation is as before.
- Admission prices a sentence at the final-priority work measured per sentence closed (stale
  speculative finals, rechecks included), not at one final; and a machine slower than at start-up
  calibration raises the price as soon as its finals are measured.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.engine.test_recognizer_driver import FakeScheduler, Session, settle, silence, speech
from voxscope.engine.load import MIN_SENTENCES, SPECULATE_MAX_FINAL_SHARE, LoadMeter
from voxscope.engine.streaming.segmenter import (
    Closed,
    EndpointConfig,
    Paused,
    Resumed,
    Segmenter,
)
from voxscope.engine.types import Priority
from voxscope.service.admission import Admission, read_loads

FRAME = 512
FRAME_S = FRAME / 16000


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _frames(seg: Segmenter, probs: list[float], pos: int = 0) -> tuple[list, int]:
    events = []
    for p in probs:
        events += seg.feed(p, pos, pos + FRAME)
        pos += FRAME
    return events, pos


def _sentence_with_a_breath() -> list[float]:
    """1 s speech, a 0.6 s breath (longer than the 240 ms speculation floor, shorter than the
    1.3 s limit), 1 s speech, then 1.6 s of silence that ends the sentence."""
    n = round(1 / FRAME_S)
    return [0.9] * n + [0.02] * round(0.6 / FRAME_S) + [0.9] * n + [0.02] * round(1.6 / FRAME_S)


@pytest.mark.parametrize("busy", [False, True])
def test_segmenter_speculates_only_at_the_limit_while_finals_keep_the_model_busy(busy):
    seg = Segmenter(EndpointConfig(), final_latency_s=lambda: 1.0, finals_busy=lambda: busy)
    events, _ = _frames(seg, _sentence_with_a_breath())
    kinds = [type(e).__name__ for e in events]
    if not busy:  # as before: a final at the breath (wasted), another at the real end
        assert kinds == ["Opened", "Paused", "Resumed", "Paused", "Closed"]
        return
    assert kinds == ["Opened", "Paused", "Closed"]
    paused, closed = events[1], events[2]
    assert isinstance(paused, Paused) and isinstance(closed, Closed)
    # Asked for at the limit, for exactly the audio the close keeps: the decode is the final.
    assert paused.end == closed.end and closed.reason == "pause"


def test_segmenter_load_rule_leaves_semantic_mode_alone():
    """Semantic punctuation needs the text at every pause to decide the close."""
    seg = Segmenter(EndpointConfig(semantic_punctuation=True), finals_busy=lambda: True)
    events, _ = _frames(seg, _sentence_with_a_breath())
    assert any(isinstance(e, Resumed) for e in events)


class MeteredScheduler(FakeScheduler):
    def __init__(self, meter: LoadMeter) -> None:
        super().__init__()
        self.load = meter


def _session(final_share: float, **config) -> tuple[Session, LoadMeter]:
    clock = Clock()
    meter = LoadMeter(window_s=15.0, clock=clock)
    meter.record(clock.t - 15.0 * final_share, clock.t, Priority.FINAL, [0.0])
    s = Session(partials=False, **config)
    s.sched = s.rec._sched = MeteredScheduler(meter)
    return s, meter


@pytest.mark.parametrize("final_share", [0.1, SPECULATE_MAX_FINAL_SHARE + 0.1])
def test_recognizer_asks_no_stale_final_when_finals_are_busy(final_share):
    async def main() -> None:
        s, meter = _session(final_share)
        loaded = final_share >= SPECULATE_MAX_FINAL_SHARE
        await s.feed(np.concatenate([silence(0.512), speech(1.504), silence(0.64)]))
        # Mid-breath: unloaded, a speculative final is already asked for; loaded, nothing.
        assert len(s.sched.pending(final=True)) == (0 if loaded else 1)
        await s.feed(np.concatenate([speech(1.0), silence(1.6)]))
        (final,) = s.sched.pending(final=True)
        s.sched.resolve(final, "One sentence with a breath in it.")
        await settle()
        assert [r.text for r in s.finals] == ["One sentence with a breath in it."]
        asked = [r for r in s.sched.requests if r.final]
        assert len(asked) == (1 if loaded else 2)  # unloaded: the breath's decode went stale
        assert s.rec.stats.speculative_misses == (0 if loaded else 1)
        assert s.rec.stats.speculative_hits == 1
        # The meter learns that a sentence closed (admission's price per sentence).
        assert len(meter._closed) == 1

    asyncio.run(main())


def test_recognizer_setting_one_keeps_speculating_under_load():
    async def main() -> None:
        s, _ = _session(0.9)
        s.rec.speculate_max_final_share = 1.0  # the setting's "always, as before"
        await s.feed(np.concatenate([silence(0.512), speech(1.504), silence(0.64)]))
        assert len(s.sched.pending(final=True)) == 1

    asyncio.run(main())


def _decode_finals(meter: LoadMeter, clock: Clock, n: int, each_s: float) -> None:
    for _ in range(n):
        meter.record(clock.t, clock.t + each_s, Priority.FINAL, [0.0])
        clock.t += each_s


def test_meter_prices_a_sentence_at_its_final_work_including_missed_speculation():
    clock = Clock()
    meter = LoadMeter(window_s=15.0, clock=clock)
    # 4 sentences, each one hit and one stale speculative final (decoded before speech resumed):
    # 8 finals of 0.5 s for 4 sentences is 1 s of final work per sentence, not 0.5.
    for _ in range(MIN_SENTENCES):
        _decode_finals(meter, clock, 2, 0.5)
        meter.sentence_closed()
    assert meter.final_sentence_s() == pytest.approx(1.0)
    assert meter.final_decode_s == pytest.approx(0.5)
    # All of it slid out of the window: too few sentences to say, so the last measure stands
    # (not one final's time, which would halve the price between two measures).
    clock.t += 16.0
    assert meter.final_sentence_s() == pytest.approx(1.0)
    _decode_finals(meter, clock, MIN_SENTENCES, 0.25)  # a new measure replaces it
    for _ in range(MIN_SENTENCES):
        meter.sentence_closed()
    assert meter.final_sentence_s() == pytest.approx(0.25)


def test_meter_needs_a_few_sentences_before_it_prices_one():
    clock = Clock()
    meter = LoadMeter(window_s=15.0, clock=clock)
    for _ in range(MIN_SENTENCES - 1):
        _decode_finals(meter, clock, 3, 0.5)
        meter.sentence_closed()
    assert meter.final_sentence_s() is None


def _admission(meter: LoadMeter, clock: Clock) -> Admission:
    return Admission(read=lambda: read_loads([meter]), max_load=0.9, sentence_rate=0.2,
                     window_s=15.0, clock=clock)


def test_admission_charges_the_missed_speculation():
    clock = Clock()
    meter = LoadMeter(window_s=15.0, clock=clock)
    # 4 streams that started a second ago (not measured enough for the learned cost); one final
    # takes 0.5 s: at one final per sentence 4 x 0.1 + 0.1 fits under 0.9 ...
    starts = [clock.t - 1.0] * 4
    meter.final_decode_s = 0.5
    assert _admission(meter, clock).check(starts) is None
    # ... but each sentence measured two finals (one went stale): 4 x 0.2 + 0.2 does not.
    for _ in range(MIN_SENTENCES):
        _decode_finals(meter, clock, 2, 0.5)
        meter.sentence_closed()
    why = _admission(meter, clock).check([clock.t - 1.0] * 4)
    assert why is not None and "measured load" in why


def test_admission_notices_a_machine_slower_than_at_calibration():
    clock = Clock()
    meter = LoadMeter(window_s=15.0, clock=clock)
    meter.final_decode_s = 0.3  # start-up calibration on a quiet machine
    assert _admission(meter, clock).check([clock.t - 1.0] * 5) is None  # 6 x 0.06 fits
    # Now the cores are shared: each final takes 1.2 s. The smoothed time per final follows
    # within a few finals, the price per sentence as soon as MIN_SENTENCES closed.
    for _ in range(MIN_SENTENCES):
        _decode_finals(meter, clock, 1, 1.2)
        meter.sentence_closed()
    assert meter.final_decode_s > 0.8
    assert meter.final_sentence_s() == pytest.approx(1.2)
    assert _admission(meter, clock).check([clock.t - 1.0] * 5) is not None  # 6 x 0.24 > 0.9
