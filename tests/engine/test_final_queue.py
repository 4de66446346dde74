"""The realtime final queue (issue 12, Overload): a cancelled final leaves the queue when it is
cancelled, not when its turn comes; while finals keep the model busy, previews go one per batch.
Model-free: a fake backend whose first decode is held, so the queue is filled deterministically;
the scheduler's own queue and the batches the backend saw are read."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from voxscope.engine.scheduler import InferenceScheduler
from voxscope.engine.types import DecodeOptions, Priority, Transcript

WAIT_S = 60
FINAL = DecodeOptions(beam_size=5, full_window=False)


class HeldBackend:
    """Blocks every decode until `gate` is set; records the batches it decoded."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []

    def decode_batch(self, items):
        self.entered.set()
        assert self.gate.wait(WAIT_S)
        self.batches.append(len(items))
        return [Transcript(text="x", words=[], language="en") for _ in items]


def audio(seconds: float = 1.0) -> np.ndarray:
    return np.zeros(int(16000 * seconds), dtype=np.float32)


def test_cancelled_final_leaves_the_queue_at_once():
    backend = HeldBackend()
    sched = InferenceScheduler(backend, max_batch=4, max_wait_s=0.0)  # type: ignore[arg-type]
    try:
        held = sched.submit(audio(), FINAL, Priority.FINAL)
        assert backend.entered.wait(WAIT_S)  # the worker is busy with `held`
        stale = sched.submit(audio(), FINAL, Priority.FINAL)  # a speculative final...
        live = sched.submit(audio(), FINAL, Priority.FINAL)
        assert stale.cancel()  # ...that speech resumed over
        # Gone now: it neither counts as the oldest waiting final nor takes a batch slot.
        assert sched.queue_depth == 1
        with sched._cond:
            assert [r.future for r in sched._finals] == [live]
        backend.gate.set()
        held.result(WAIT_S)
        live.result(WAIT_S)
        assert [p for _, p in sched.service_log()] == [Priority.FINAL, Priority.FINAL]
        assert backend.batches == [1, 1]
    finally:
        backend.gate.set()
        sched.close()


def test_oldest_final_wait_ignores_a_cancelled_final():
    """Admission reads the oldest queued final's age: a cancelled one must not be it."""
    backend = HeldBackend()
    sched = InferenceScheduler(backend, max_batch=4, max_wait_s=0.0)  # type: ignore[arg-type]
    try:
        held = sched.submit(audio(), FINAL, Priority.FINAL)
        assert backend.entered.wait(WAIT_S)
        stale = sched.submit(audio(), FINAL, Priority.FINAL)
        assert stale.cancel()
        assert sched._oldest_final() is None
        backend.gate.set()
        held.result(WAIT_S)
    finally:
        backend.gate.set()
        sched.close()


PREVIEW = DecodeOptions(beam_size=1, full_window=False, word_timestamps=False)


class FrozenClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize("finals_busy", [False, True])
def test_previews_one_per_batch_while_finals_keep_the_model_busy(finals_busy):
    """Previews degrade first: while realtime finals take at least `busy_final_share` of model
    time, a final queued behind a preview decode waits for one preview, not a batch of them."""
    backend = HeldBackend()
    sched = InferenceScheduler(backend, max_batch=4, max_wait_s=0.0)  # type: ignore[arg-type]
    clock = FrozenClock(time.monotonic())
    sched.load.clock = clock  # the measured share stays what this test recorded
    if finals_busy:
        sched.load.record(clock.t - 14.0, clock.t, Priority.FINAL, [0.0])  # 0.93 of 15 s
    try:
        held = sched.submit(audio(), FINAL, Priority.FINAL)
        assert backend.entered.wait(WAIT_S)
        previews = [sched.submit(audio(), PREVIEW, Priority.PARTIAL, key=f"s{k}")
                    for k in range(3)]
        backend.gate.set()
        held.result(WAIT_S)
        for fut in previews:
            assert fut.result(WAIT_S) is not None
        assert backend.batches == ([1, 1, 1, 1] if finals_busy else [1, 3])
    finally:
        backend.gate.set()
        sched.close()
