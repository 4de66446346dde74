"""Draining for shutdown: the live sessions of a server, and whether it is draining.

Protocols register each connection (`session`) with how to tell whether it is busy and how to
end it in its own wire's terms; `run` (called by the server's shutdown) waits for busy sessions
up to a deadline, then ends the rest with `ServiceUnavailable`. New work is refused meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger(__name__)

SHUTDOWN_CODE = "ServiceUnavailable"
SHUTDOWN_MESSAGE = "the server is shutting down; retry later"


class Drain:
    """The live sessions of a server and whether it is draining."""

    def __init__(self) -> None:
        self.draining = False
        self._sessions: dict[int, tuple[Callable[[], bool], Callable[[str, str], Awaitable[None]]]] = {}

    @contextlib.asynccontextmanager
    async def session(self, busy: Callable[[], bool],
                      stop: Callable[[str, str], Awaitable[None]]) -> AsyncIterator[None]:
        """Register a connection for the block: `busy()` says whether it runs work the drain
        should wait for; `stop(code, message)` ends it with its protocol's error and a close."""
        key = id(stop)
        self._sessions[key] = (busy, stop)
        try:
            yield
        finally:
            self._sessions.pop(key, None)

    def busy(self) -> int:
        return sum(1 for busy, _ in self._sessions.values() if busy())

    async def run(self, drain_s: float, force: Callable[[], bool] = lambda: False) -> None:
        self.draining = True
        deadline = time.monotonic() + drain_s
        if self.busy():
            log.info("draining %d live session(s) for up to %.0f s", self.busy(), drain_s)
        while self.busy() and time.monotonic() < deadline and not force():
            await asyncio.sleep(0.1)
        live = list(self._sessions.values())
        if live:
            log.info("ending %d live session(s) for shutdown", len(live))
        results = await asyncio.gather(*(stop(SHUTDOWN_CODE, SHUTDOWN_MESSAGE) for _, stop in live),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                log.warning("ending a session for shutdown failed: %r", r)
