"""The admission rule by measured load, without a model or a server: a fake clock drives the
load meter (engine/load.py) and the rule (service/admission.py)."""

from __future__ import annotations

import pytest

from voxscope.engine.load import LoadMeter
from voxscope.engine.types import Priority
from voxscope.errors import THROTTLING, ServiceError
from voxscope.service.admission import Admission, LoadReading, read_loads
from voxscope.service.capacity import Capacity


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_meter_shares_over_the_window():
    clock = Clock()
    m = LoadMeter(window_s=10.0, clock=clock)
    m.record(1000.0, 1002.0, Priority.FINAL, [0.5])
    m.record(1002.0, 1003.0, Priority.PARTIAL)
    m.record(1003.0, 1004.0, Priority.FILE)
    clock.t = 1004.0
    assert m.share(Priority.FINAL) == pytest.approx(0.2)
    assert m.share(Priority.PARTIAL) == pytest.approx(0.1)
    assert m.share(Priority.FINAL, Priority.PARTIAL, Priority.FILE) == pytest.approx(0.4)
    assert m.final_wait() == pytest.approx(0.5)
    # Half of the final batch has slid out of the window; then all of it.
    clock.t = 1011.0
    assert m.share(Priority.FINAL) == pytest.approx(0.1)
    clock.t = 1020.0
    assert m.share(Priority.FINAL) == 0.0
    assert m.final_wait() == 0.0  # an old wait no longer counts


def test_meter_counts_a_final_queued_now():
    clock = Clock()
    m = LoadMeter(window_s=10.0, clock=clock)
    m.oldest_final = lambda: 997.0  # a final queued 3 s ago and still not decoding
    assert m.final_wait() == pytest.approx(3.0)


def reading(final: float = 0.0, wait: float = 0.0) -> LoadReading:
    return LoadReading(final_share=final, preview_share=0.0, final_wait_s=wait)


def test_first_stream_always_admitted_and_off_switch():
    a = Admission(lambda: reading(1.0, 99.0), max_load=0.5)
    assert a.check([]) is None
    assert Admission(lambda: reading(1.0, 99.0), max_load=0.0).check([0.0] * 7) is None


def test_projection_with_the_prior_cost_counts_young_streams():
    clock = Clock()
    a = Admission(lambda: reading(0.0), max_load=0.5, stream_cost=0.1, window_s=10.0,
                  clock=clock)
    # Streams that just started have produced no load yet: the prior cost counts for them.
    assert a.check([clock.t] * 3) is None  # 3 * 0.1 + 0.1 = 0.4
    why = a.check([clock.t] * 5)  # 5 * 0.1 + 0.1 = 0.6 > 0.5
    assert why is not None and "measured load" in why
    assert a.refused == 1
    assert a.cost == 0.1  # nothing measured yet: the prior stands


def test_young_streams_count_by_the_share_of_the_window_they_ran():
    clock = Clock()
    a = Admission(lambda: reading(0.4), max_load=0.9, stream_cost=0.05, window_s=10.0,
                  clock=clock)
    for _ in range(30):  # two streams that ran half the window each: 0.4 per stream-window
        a.check([clock.t - 5.0, clock.t - 5.0])
    assert a.cost == pytest.approx(0.4, abs=0.01)


def test_cost_is_learned_from_measured_streams():
    clock = Clock()
    load = {"final": 0.6}
    a = Admission(lambda: reading(load["final"]), max_load=0.8, stream_cost=0.05, window_s=10.0,
                  clock=clock)
    starts = [clock.t - 60] * 2  # two streams measured for a whole window: 0.3 each
    for _ in range(20):
        a.check(starts)
    assert a.cost == pytest.approx(0.3, abs=0.01)
    assert a.check(starts) is not None  # 0.6 + 0.3 > 0.8
    load["final"] = 0.2  # quieter now: 0.1 each
    for _ in range(20):
        a.check(starts)
    assert a.check(starts) is None


def test_finals_already_waiting_refuse():
    a = Admission(lambda: reading(0.1, wait=3.0), max_load=0.8, max_final_wait_s=2.0)
    why = a.check([0.0])
    assert why is not None and "wait" in why


def test_capacity_refuses_streams_only_and_frees_them():
    load = {"wait": 0.0}
    adm = Admission(lambda: reading(0.0, load["wait"]), max_load=0.8, max_final_wait_s=1.0)
    cap = Capacity(8, admission=adm)
    first = cap.slot(stream=True)
    load["wait"] = 5.0
    with pytest.raises(ServiceError) as exc:
        cap.slot(stream=True)
    assert exc.value.code == THROTTLING and exc.value.http_status == 429
    assert "measured load" in exc.value.message
    with cap.slot():  # a sync request is not a stream: max_sessions only
        pass
    first.release()
    first.release()  # idempotent
    assert not cap.streams and cap.active == 0
    cap.slot(stream=True).release()  # no stream running: admitted whatever the load


def test_read_loads_sums_models():
    clock = Clock()
    meters = [LoadMeter(10.0, clock), LoadMeter(10.0, clock)]
    meters[0].record(995.0, 998.0, Priority.FINAL, [0.2])
    meters[1].record(996.0, 998.0, Priority.FINAL, [1.0])
    r = read_loads(meters)
    assert r.final_share == pytest.approx(0.5)
    assert r.final_wait_s == pytest.approx(1.0)


def test_a_stream_is_priced_by_the_measured_decode_time_before_its_share_shows():
    clock = Clock()
    m = LoadMeter(10.0, clock)
    m.record(999.0, 1000.0, Priority.FINAL, [0.1, 0.1])  # 2 finals in 1 s: 0.5 s each
    assert m.final_decode_s == pytest.approx(0.5)
    a = Admission(lambda: read_loads([m]), max_load=0.9, stream_cost=0.01, sentence_rate=0.25,
                  window_s=10.0, clock=clock)
    # 0.5 s x 0.25 finals/s = 0.125 per stream: 6 streams -> 0.875, 7 -> 1.0
    assert a.check([clock.t] * 6) is None
    assert a.check([clock.t] * 7) is not None
