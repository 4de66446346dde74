"""What both WebSocket protocols share: the authenticated upgrade and its DashScope-shaped refusal."""

from __future__ import annotations

import contextvars
import logging
import threading
import time

from starlette.websockets import WebSocket

from voxscope.errors import ServiceError
from voxscope.protocols.errors import error_response
from voxscope.service.auth import Principal
from voxscope.service.metrics import wire_of
from voxscope.service.runtime import Runtime

log = logging.getLogger(__name__)

# Set in the task that refused a WebSocket upgrade: uvicorn's own lines about it are then dropped
# (its "ASGI callable returned without completing handshake" is an ERROR for every refusal).
_refused: contextvars.ContextVar[bool] = contextvars.ContextVar("voxscope_refused", default=False)


async def accept(rt: Runtime, ws: WebSocket) -> Principal | None:
    """Check the credentials of a WebSocket upgrade; accept it (the caller) or refuse it (None)."""
    try:
        principal, subprotocol = rt.keys.authenticate_ws(ws.headers, ws.query_params)
    except ServiceError as exc:
        rt.metrics.refused(wire_of("websocket", ws.url.path), exc.code)
        await deny(ws, exc.http_status, exc.code, exc.message)
        return None
    await ws.accept(subprotocol=subprotocol)  # a token sent as subprotocol is answered with it
    rt.metrics.connections.inc()
    return principal


async def deny(ws: WebSocket, status: int, code: str, message: str) -> None:
    """Refuse a WebSocket upgrade with an HTTP status and DashScope's JSON error body."""
    refusals.note(ws.url.path, status, code)  # one rate-limited line, not uvicorn's ERROR
    try:
        await ws.send_denial_response(error_response(status, code, message))
    except RuntimeError:  # server without the denial extension: a plain refusal (403)
        await ws.close(code=1008, reason=code)


class RefusalLog:
    """One WARNING line per `interval_s` for refused upgrades, with how many were refused since."""

    def __init__(self, interval_s: float = 60.0) -> None:
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._last = -interval_s
        self._skipped = 0

    def note(self, path: str, status: int, code: str) -> None:
        _refused.set(True)
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.interval_s:
                self._skipped += 1
                return
            skipped, self._skipped, self._last = self._skipped, 0, now
        log.warning("refused WebSocket upgrade on %s: %d %s%s", path, status, code,
                    f" ({skipped} more refused since the last report)" if skipped else "")


refusals = RefusalLog()


class _QuietRefusals(logging.Filter):
    """Drop uvicorn's per-refusal lines (ERROR and access INFO) in a task that refused on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _refused.get()


def install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietRefusals) for f in logger.filters):
        logger.addFilter(_QuietRefusals())
