"""How many recognitions (realtime tasks, sync calls) may run at once; beyond that new ones are
refused, not queued."""

from __future__ import annotations


class Capacity:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.refused = 0

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
