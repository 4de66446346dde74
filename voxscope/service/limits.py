"""Per-key limits (sessions at once, requests per second, queued file tasks) and their refusals
with DashScope's throttling codes (HTTP 429).

The counters live in one process (`LocalLimiter`), or in Redis for all servers sharing it
(`redis_limits.RedisLimiter`, chosen when `queue_url` is `redis://…`); `queued_tasks_ok` counts
from the shared database.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select

from voxscope.errors import THROTTLING_QUOTA, THROTTLING_RATE, ServiceError


@dataclass(frozen=True)
class Limits:
    """A key's limits; None means no limit."""

    max_sessions: int | None = None
    rps: float | None = None
    max_queued_tasks: int | None = None
    daily_audio_hours: float | None = None  # stored and listed; enforced with usage metering


class Limiter(Protocol):
    def hit(self, key_id: str, rps: float) -> bool:
        """Count one request; False when it exceeds `rps` over the last second."""
        ...

    def acquire_session(self, key_id: str, limit: int) -> bool: ...

    def release_session(self, key_id: str) -> None: ...


class LocalLimiter:
    """In-process counters: a one-second sliding window of request times, open sessions."""

    WINDOW_S = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()  # REST endpoints run in a thread pool too
        self._hits: dict[str, deque[float]] = {}
        self._sessions: dict[str, int] = {}

    def hit(self, key_id: str, rps: float) -> bool:
        now = time.monotonic()
        with self._lock:
            window = self._hits.setdefault(key_id, deque())
            while window and window[0] <= now - self.WINDOW_S:
                window.popleft()
            if len(window) >= max(1, int(rps * self.WINDOW_S)):
                return False  # a refused request is not counted: the key recovers on its own
            window.append(now)
            return True

    def acquire_session(self, key_id: str, limit: int) -> bool:
        with self._lock:
            if self._sessions.get(key_id, 0) >= limit:
                return False
            self._sessions[key_id] = self._sessions.get(key_id, 0) + 1
            return True

    def release_session(self, key_id: str) -> None:
        with self._lock:
            left = self._sessions.get(key_id, 0) - 1
            if left > 0:
                self._sessions[key_id] = left
            else:
                self._sessions.pop(key_id, None)


def rate_refused(rps: float) -> ServiceError:
    return ServiceError(THROTTLING_RATE, f"Requests rate limit exceeded: this key allows {rps:g} "
                        "requests per second; retry later", 429)


def sessions_refused(limit: int) -> ServiceError:
    return ServiceError(THROTTLING_QUOTA, f"Allocated quota exceeded: this key allows {limit} "
                        "recognitions at once; retry when one ends", 429)


def queued_tasks_ok(db, owner: str, limits: Limits | None) -> None:
    """Refuse a new file task while the key already has `max_queued_tasks` pending or running.

    Counted in the shared database, so it holds across servers (two submits racing on different
    servers can both pass: the limit is a quota, not a lock)."""
    if limits is None or not limits.max_queued_tasks:
        return
    from voxscope.storage.tables import Task

    with db.session() as s:
        n = s.scalar(select(func.count()).select_from(Task).where(
            Task.owner == owner, Task.status.in_(("PENDING", "RUNNING"))))
    if n >= limits.max_queued_tasks:
        raise ServiceError(THROTTLING_QUOTA, f"Allocated quota exceeded: this key may have "
                           f"{limits.max_queued_tasks} file tasks queued or running, it has {n}",
                           429)
