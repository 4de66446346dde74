"""Realtime work gone: the file lane hands its windows to both main replicas at once (issue 12).

With a file lane, a replica is built when file and realtime work meet. When the streams stop, file
windows become the main model's again; the held replica used to stay for `file_lane_idle_s` (60 s)
and, while held, the main model's second thread took nothing (memory), so a file task right after
the streams decoded one window at a time. Now the replica is given back as soon as the file windows
are the main model's, and two of them decode at once on its two threads. Stand-in backends, no
timings: the test waits (however long) for the realtime hold to pass and for both windows to be in
flight together; `file_lane_idle_s` is far longer than any wait here.
"""

from __future__ import annotations

import gc
import time
import weakref

import pytest

from tests.hardening.test_lane_release import Backend, tagged
from tests.hardening.test_parallel_files import FULL, MAIN, SECOND, GatedBackend
from voxscope.engine.scheduler import InferenceScheduler
from voxscope.engine.types import Priority

WAIT_S = 300  # generous: the machine is shared
HOLD_S = 2.0  # realtime_hold_s: realtime work is "about" this long after its last request


@pytest.mark.timeout(WAIT_S * 2)
def test_file_windows_after_streams_stop_use_both_replicas():
    main = GatedBackend(gated=(20, 21))
    built: list[weakref.ref] = []

    def factory() -> Backend:
        b = Backend(f"lane{len(built) + 1}")
        built.append(weakref.ref(b))
        return b

    sched = InferenceScheduler(main, max_batch=4, realtime_hold_s=HOLD_S,  # type: ignore[arg-type]
                               file_lane=factory, file_lane_idle_s=3600)  # type: ignore[arg-type]
    try:
        # A stream is active: its final on the main lane, then a file window, which is the lane's
        # (submitted right after the final, well within the hold).
        assert sched.submit(tagged(1), FULL, Priority.FINAL).result(WAIT_S) == 1
        assert sched.submit(tagged(10), FULL, Priority.FILE).result(WAIT_S) == ("lane1", 10.0)
        assert sched.file_backend is not None
        # The stream stops: once the hold has passed, file windows are the main model's.
        time.sleep(HOLD_S * 2)
        later = [sched.submit(tagged(t), FULL, Priority.FILE) for t in (20, 21)]
        # Both in flight at once, on the main model's two threads (neither can finish: gated).
        assert main.entered[20].wait(WAIT_S) and main.entered[21].wait(WAIT_S), main.calls
        assert main.running == 2
        assert {main.thread_of(20), main.thread_of(21)} == {MAIN, SECOND}
        main.release()
        assert [f.result(WAIT_S) for f in later] == [20, 21]
        # ... and the lane's replica was given back long before file_lane_idle_s.
        assert sched.file_backend is None and sched.file_lane_loads == 1
        gc.collect()
        assert built[0]() is None, "the released replica is still referenced"
    finally:
        main.release()
        sched.close()
