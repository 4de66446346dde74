"""How many realtime tasks may run at once; beyond that new tasks are refused, not queued."""

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
