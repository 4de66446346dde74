"""A short-window final's full-window recheck on the idle second replica (issue 12, Overload).

Model-free: a fake two-replica backend whose main-lane decode is held, so the main lane is busy
for as long as the test says; which requests the second thread took is read from the batches the
backend saw. Nothing here depends on the wall clock: a held decode is released by the test."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from voxscope.engine.scheduler import InferenceScheduler
from voxscope.engine.types import DecodeOptions, Priority, Transcript

WAIT_S = 60
SHORT = DecodeOptions(beam_size=5, full_window=False)
FULL = DecodeOptions(beam_size=5, full_window=True)
HOLD_S = 1.0  # the held request's audio length marks it


class TwoReplicas:
    """`workers = 2` (the scheduler starts its second thread); a decode of HOLD_S audio blocks
    until `gate` is set; every decode's audio lengths are recorded, in order."""

    workers = 2

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.decoded: list[list[float]] = []
        self._lock = threading.Lock()

    def decode_batch(self, items):
        lengths = [a.size / 16000 for a, _ in items]
        if HOLD_S in lengths:
            self.entered.set()
            assert self.gate.wait(WAIT_S)
        with self._lock:
            self.decoded.append(lengths)
        return [Transcript(text="x", words=[], language="en") for _ in items]


def audio(seconds: float) -> np.ndarray:
    return np.zeros(int(16000 * seconds), dtype=np.float32)


def _busy_main_lane(backend: TwoReplicas, mode: str = "rechecks",
                    **kw) -> InferenceScheduler:
    sched = InferenceScheduler(backend, max_batch=4, max_wait_s=0.0, **kw)  # type: ignore[arg-type]
    sched.second_realtime = mode
    sched.submit(audio(HOLD_S), SHORT, Priority.FINAL)  # the main lane takes it and is held
    assert backend.entered.wait(WAIT_S)
    return sched


def test_a_recheck_is_decoded_on_the_second_replica_while_the_main_lane_is_busy():
    backend = TwoReplicas()
    sched = _busy_main_lane(backend)
    try:
        final = sched.submit(audio(2.0), SHORT, Priority.FINAL)  # another stream's final
        recheck = sched.submit(audio(3.0), FULL, Priority.FINAL, any_lane=True)
        # Decoded while the main lane's decode is still held: the second thread took it.
        assert recheck.result(WAIT_S) is not None
        assert not backend.gate.is_set() and backend.decoded == [[3.0]]
        # A plain final stays the main lane's (the default takes rechecks only).
        assert not final.done()
        with sched._cond:
            assert [r.future for r in sched._finals] == [final]
        backend.gate.set()
        final.result(WAIT_S)
        assert backend.decoded[1:] == [[HOLD_S], [2.0]]
    finally:
        backend.gate.set()
        sched.close()


def test_any_final_on_the_second_replica_when_asked():
    backend = TwoReplicas()
    sched = _busy_main_lane(backend, mode="finals")
    try:
        final = sched.submit(audio(2.0), SHORT, Priority.FINAL)
        assert final.result(WAIT_S) is not None
        assert not backend.gate.is_set() and backend.decoded == [[2.0]]
    finally:
        backend.gate.set()
        sched.close()


@pytest.mark.parametrize("mode", ["none", "rechecks"])
def test_a_recheck_waits_for_the_main_lane_without_a_second_replica(mode):
    """`model_workers: 1` (no second thread), or the setting off: the recheck is served on the
    main lane after the decode in flight, as before."""
    backend = TwoReplicas()
    if mode == "rechecks":
        backend.workers = 1  # type: ignore[misc]
    sched = _busy_main_lane(backend, mode=mode)
    try:
        recheck = sched.submit(audio(3.0), FULL, Priority.FINAL, any_lane=True)
        with sched._cond:
            assert [r.future for r in sched._finals] == [recheck]
        assert backend.decoded == []
        backend.gate.set()
        assert recheck.result(WAIT_S) is not None
        assert backend.decoded == [[HOLD_S], [3.0]]
    finally:
        backend.gate.set()
        sched.close()


def test_a_recheck_does_not_take_a_file_window_turn_from_realtime():
    """The second thread prefers the recheck to the file windows it may take as the shared file
    lane: realtime finals still come before file windows."""
    backend = TwoReplicas()
    sched = _busy_main_lane(backend, file_lane_shared=True, realtime_idle_s=0.0,
                            file_max_defer_s=0.0)
    try:
        with sched._cond:  # (reentrant) queued together: the second thread sees both at once
            files = [sched.submit(audio(4.0), FULL, Priority.FILE) for _ in range(2)]
            recheck = sched.submit(audio(3.0), FULL, Priority.FINAL, any_lane=True)
        assert recheck.result(WAIT_S) is not None
        for f in files:
            f.result(WAIT_S)
        assert [d for d in backend.decoded if d != [HOLD_S]][0] == [3.0]
    finally:
        backend.gate.set()
        sched.close()
