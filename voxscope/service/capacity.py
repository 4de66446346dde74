"""How many recognitions (realtime tasks, sync calls) may run at once; beyond that new ones are
refused, not queued.

One idiom everywhere: `slot = capacity.slot()` either holds one unit or raises DashScope's
throttling ServiceError (429). A Slot is a context manager for work bounded by one block
(`with capacity.slot(): ...`) and has an idempotent `release()` for work that outlives it (a
WebSocket task, a streamed answer). A per-key limiter joins here later: `slot(principal)`.
"""

from __future__ import annotations

from types import TracebackType

from voxscope.errors import THROTTLING, ServiceError


class Capacity:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.refused = 0

    def slot(self) -> Slot:
        """One unit of capacity, or ServiceError(Throttling.Capacity, 429)."""
        if not self.try_acquire():
            raise ServiceError(THROTTLING, f"server at capacity: {self.limit} recognitions are "
                               "running; retry later", 429)
        return Slot(self)

    def try_acquire(self) -> bool:
        # Called on the event loop only, so no lock is needed.
        if self.active >= self.limit:
            self.refused += 1
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active = max(0, self.active - 1)


class Slot:
    """One acquired unit of capacity, released once however many paths end it."""

    def __init__(self, capacity: Capacity) -> None:
        self._capacity = capacity
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._capacity.release()

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
