"""What both WebSocket protocols share: the authenticated upgrade and its DashScope-shaped refusal."""

from __future__ import annotations

from starlette.websockets import WebSocket

from voxscope.errors import ServiceError
from voxscope.protocols.errors import error_response
from voxscope.service.auth import Principal
from voxscope.service.runtime import Runtime


async def accept(rt: Runtime, ws: WebSocket) -> Principal | None:
    """Check the credentials of a WebSocket upgrade; accept it (the caller) or refuse it (None)."""
    try:
        principal = rt.keys.authenticate(ws.headers)
    except ServiceError as exc:
        await deny(ws, exc.http_status, exc.code, exc.message)
        return None
    await ws.accept()
    rt.metrics.connections.inc()
    return principal


async def deny(ws: WebSocket, status: int, code: str, message: str) -> None:
    """Refuse a WebSocket upgrade with an HTTP status and DashScope's JSON error body."""
    try:
        await ws.send_denial_response(error_response(status, code, message))
    except RuntimeError:  # server without the denial extension: a plain refusal (403)
        await ws.close(code=1008, reason=code)
