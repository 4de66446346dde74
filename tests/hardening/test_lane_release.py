"""The file lane gives its model replica back when idle (issue 12, Memory).

The lane's second CTranslate2 replica costs ~125 MB of RSS for as long as it is held. After
`file_lane_idle_s` without file windows to decode (realtime work gone, so file windows are the main
model's again) the scheduler drops it, and builds a new one when file and realtime work next meet.
Checked in-process with stand-in backends, by which backend decoded each request and in what order,
and by the dropped replica being garbage (nothing keeps it alive): nothing here depends on how fast
the machine is (the idle period is a setting; the test waits for the release, however long it takes).
"""

from __future__ import annotations

import gc
import time
import weakref

import numpy as np

from voxscope.engine.scheduler import InferenceScheduler
from voxscope.engine.types import DecodeOptions, Priority

WAIT_S = 120  # generous: the machine is shared
FULL = DecodeOptions(beam_size=5, full_window=True, word_timestamps=True)
AUDIO = np.zeros(1600, dtype=np.float32)


class Backend:
    """Stands in for WhisperBackend: each decode returns (this backend's name, request tag)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def decode_batch(self, items):
        return [(self.name, float(audio[0])) for audio, _ in items]


def tagged(tag: int) -> np.ndarray:
    a = AUDIO.copy()
    a[0] = tag
    return a


def wait_for(cond, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_idle_lane_replica_is_released_and_built_again():
    built: list[weakref.ref] = []

    def factory() -> Backend:
        b = Backend(f"lane{len(built) + 1}")
        built.append(weakref.ref(b))
        return b

    # realtime_hold_s: once a realtime request was seen, file windows are the lane's for the rest
    # of the test; file_lane_idle_s: the lane gives its replica back soon after its last window.
    sched = InferenceScheduler(Backend("main"), file_lane=factory, realtime_hold_s=600,
                               file_lane_idle_s=0.3)
    try:
        assert sched.submit(tagged(1), FULL, Priority.FINAL).result(WAIT_S) == ("main", 1.0)
        first = [sched.submit(tagged(10 + i), FULL, Priority.FILE) for i in range(3)]
        assert [f.result(WAIT_S) for f in first] == [("lane1", 10.0), ("lane1", 11.0),
                                                     ("lane1", 12.0)]
        # Idle: the replica is dropped, and nothing holds it any more.
        wait_for(lambda: sched.file_backend is None, "the idle replica was never released")
        gc.collect()
        assert built[0]() is None, "the released replica is still referenced"
        assert sched.file_lane_loads == 1
        # File and realtime work meet again: a new replica decodes the file windows.
        assert sched.submit(tagged(2), FULL, Priority.FINAL).result(WAIT_S) == ("main", 2.0)
        again = [sched.submit(tagged(20 + i), FULL, Priority.FILE) for i in range(2)]
        assert [f.result(WAIT_S) for f in again] == [("lane2", 20.0), ("lane2", 21.0)]
        assert sched.file_lane_loads == 2
    finally:
        sched.close()


def test_lane_replica_kept_when_idle_release_is_off():
    built: list[str] = []

    def factory() -> Backend:
        built.append("lane")
        return Backend("lane")

    sched = InferenceScheduler(Backend("main"), file_lane=factory, realtime_hold_s=600,
                               file_lane_idle_s=0)
    try:
        sched.submit(tagged(1), FULL, Priority.FINAL).result(WAIT_S)
        assert sched.submit(tagged(10), FULL, Priority.FILE).result(WAIT_S) == ("lane", 10.0)
        sched.submit(tagged(2), FULL, Priority.FINAL).result(WAIT_S)
        assert sched.submit(tagged(11), FULL, Priority.FILE).result(WAIT_S) == ("lane", 11.0)
        assert sched.file_backend is not None and built == ["lane"]
    finally:
        sched.close()
