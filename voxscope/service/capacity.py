"""How many recognitions (realtime tasks, sync calls) may run at once; beyond that new ones are
refused, not queued.

One idiom everywhere: `slot = capacity.slot()` either holds one unit or raises DashScope's
throttling ServiceError (429). A Slot is a context manager for work bounded by one block
(`with capacity.slot(): ...`) and has an idempotent `release()` for work that outlives it (a
WebSocket task, a streamed answer). `slot(principal)` also holds one of the key's own sessions.
`slot(stream=True)` (a realtime stream) is also refused when the measured load says one more
stream would make finals lag (voxscope.service.admission).
"""

from __future__ import annotations

import time
from types import TracebackType

from voxscope.errors import THROTTLING, ServiceError
from voxscope.service.admission import Admission
from voxscope.service.auth import Principal
from voxscope.service.limits import Limiter, LocalLimiter, sessions_refused


class Capacity:
    def __init__(self, limit: int, per_key: Limiter | None = None,
                 admission: Admission | None = None) -> None:
        self.limit = limit
        self.active = 0
        self.refused = 0
        self.per_key = per_key or LocalLimiter()
        self.admission = admission
        self.streams: dict[int, float] = {}  # live realtime streams: id -> start (monotonic)
        self._ids = 0

    def slot(self, principal: Principal | None = None, stream: bool = False) -> Slot:
        """One unit of capacity, or ServiceError(Throttling.Capacity, 429); a key at its own
        session limit gets Throttling.AllocationQuota (429) and takes nothing from others."""
        limit = principal.limits.max_sessions if principal and principal.limits else None
        key_id = principal.key_id if principal and limit else None
        # The key's own limit first: a key at its limit hears about its quota, not the server's load.
        if key_id and limit and not self.per_key.acquire_session(key_id, limit):
            raise sessions_refused(limit)
        if stream and self.admission is not None:
            why = self.admission.check(list(self.streams.values()))
            if why is not None:
                self.refused += 1
                if key_id:
                    self.per_key.release_session(key_id)
                raise ServiceError(THROTTLING, f"server at capacity ({why}); retry later", 429)
        if not self.try_acquire():
            if key_id:
                self.per_key.release_session(key_id)
            raise ServiceError(THROTTLING, f"server at capacity: {self.limit} recognitions are "
                               "running; retry later", 429)
        slot = Slot(self, key_id)
        if stream:
            self._ids += 1
            slot.stream_id = self._ids
            self.streams[self._ids] = time.monotonic()
        return slot

    def try_acquire(self) -> bool:
        # Called on the event loop only, so no lock is needed.
        if self.active >= self.limit:
            self.refused += 1
            return False
        self.active += 1
        return True

    def release(self, key_id: str | None = None, stream_id: int | None = None) -> None:
        self.active = max(0, self.active - 1)
        if stream_id is not None:
            self.streams.pop(stream_id, None)
        if key_id:
            self.per_key.release_session(key_id)


class Slot:
    """One acquired unit of capacity, released once however many paths end it."""

    def __init__(self, capacity: Capacity, key_id: str | None = None) -> None:
        self._capacity = capacity
        self._key_id = key_id  # the key whose session count this slot also holds
        self._held = True
        self.stream_id: int | None = None  # set for a realtime stream (load admission)

    def release(self) -> None:
        if self._held:
            self._held = False
            self._capacity.release(self._key_id, self.stream_id)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
