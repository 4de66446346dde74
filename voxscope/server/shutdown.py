"""Graceful shutdown: on SIGTERM, drain live sessions before uvicorn closes their sockets.

uvicorn's own shutdown closes every WebSocket with 1012 and no protocol event. Here, first:
new requests and upgrades are refused with 503 (see server.guards), running sessions (kept in
service.drain) get up to `shutdown_drain_s` to finish on their own, then each one still live
is told in its protocol (inference: `task-failed`; realtime: an `error` event) and closed
cleanly; only then does uvicorn's shutdown run.
"""

from __future__ import annotations

import asyncio
import time

import uvicorn

from voxscope.service.drain import Drain

_CLOSE_WAIT_S = 5.0  # for clients to answer our close frames before sockets are dropped


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
