"""Graceful shutdown: on SIGTERM, drain live sessions before uvicorn closes their sockets.

uvicorn's own shutdown closes every WebSocket with 1012 and no protocol event. Here, first:
new requests and upgrades are refused with 503 (see server.guards), running sessions get up to
`shutdown_drain_s` to finish on their own, then each one still live is told in its protocol
(inference: `task-failed`; realtime: an `error` event) and closed cleanly; only then does
uvicorn's shutdown run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import uvicorn

log = logging.getLogger(__name__)

SHUTDOWN_CODE = "ServiceUnavailable"
SHUTDOWN_MESSAGE = "the server is shutting down; retry later"
_CLOSE_WAIT_S = 5.0  # for clients to answer our close frames before sockets are dropped


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


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose shutdown drains `drain` first."""

    def __init__(self, config: uvicorn.Config, drain: Drain, drain_s: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_s = drain_s

    async def shutdown(self, sockets=None) -> None:
        await self.drain.run(self.drain_s, lambda: self.force_exit)
        # Closed sessions wait for the client's close frame; dropping the socket before it
        # arrives would answer it with a TCP reset.
        deadline = time.monotonic() + _CLOSE_WAIT_S
        while self._websockets() and time.monotonic() < deadline and not self.force_exit:
            await asyncio.sleep(0.05)
        await super().shutdown(sockets)

    def _websockets(self) -> int:
        return sum(1 for c in self.server_state.connections if hasattr(c, "handshake_complete")
                   or hasattr(c, "handshake_completed_event"))
