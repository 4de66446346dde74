"""A sentence's first preview goes ahead of queued realtime finals (issue 12, First partial);
later previews still wait for finals. Model-free: a fake backend whose first decode is held, so
the queue is filled deterministically; the scheduler's own service log gives the order."""

from __future__ import annotations

import threading

import numpy as np

from voxscope.engine.scheduler import InferenceScheduler
from voxscope.engine.types import DecodeOptions, Priority, Transcript

WAIT_S = 60
FULL = DecodeOptions(beam_size=5, full_window=True)
PREVIEW = DecodeOptions(beam_size=1, full_window=False, word_timestamps=False)


class HeldBackend:
    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()

    def decode_batch(self, items):
        self.entered.set()
        assert self.gate.wait(WAIT_S)
        return [Transcript(text="x", words=[], language="en") for _ in items]


def test_first_preview_ahead_of_finals_later_previews_behind():
    backend = HeldBackend()
    sched = InferenceScheduler(backend, max_batch=4, max_wait_s=0.0,  # type: ignore[arg-type]
                               first_preview_ahead=True)
    audio = np.zeros(16000, dtype=np.float32)
    try:
        held = sched.submit(audio, FULL, Priority.FINAL)
        assert backend.entered.wait(WAIT_S)  # the worker is busy with `held`
        futures = {
            "final_a": sched.submit(audio, FULL, Priority.FINAL),
            "later_preview": sched.submit(audio, PREVIEW, Priority.PARTIAL, key="s1"),
            "final_b": sched.submit(audio, FULL, Priority.FINAL),
            "first_preview": sched.submit(audio, PREVIEW, Priority.PARTIAL, key="s2", first=True),
        }
        seqs = {name: i + 1 for i, name in enumerate(futures)}  # submit order after `held`
        backend.gate.set()
        held.result(WAIT_S)
        for fut in futures.values():
            assert fut.result(WAIT_S) is not None
        log = [seq for seq, _ in sched.service_log()][1:]
        order = [name for s in log for name, n in seqs.items() if n == s]
        assert order == ["first_preview", "final_a", "final_b", "later_preview"], order
    finally:
        backend.gate.set()
        sched.close()
