"""How a stream's audio arrives against the wall clock: ahead of real time (a burst) or not."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pace:
    """Audio received vs wall clock since the stream's first audio.

    A client sending at real-time pace stays within a chunk or two of the wall clock; one that
    sends a recording in a burst (`Recognition.call()`, unpaced tests) gets seconds ahead of it."""

    def __init__(self, sample_rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = sample_rate
        self._clock = clock
        self._start: float | None = None
        self._samples = 0

    def fed(self, samples: int) -> None:
        if self._start is None:
            self._start = self._clock()
        self._samples += samples

    def ahead_s(self) -> float:
        """Seconds of audio received beyond the wall time since the first (< 0: slower)."""
        if self._start is None:
            return 0.0
        return self._samples / self._rate - (self._clock() - self._start)
