"""Who may reach the server before any route runs: Host / Origin checks, docs auth, draining.

- No-key (local) mode: only loopback `Host` values, the address the client actually connected
  to, or `allowed_hosts` are served (DNS rebinding gives a foreign name); a request with an
  `Origin` must be same-origin (SDK clients send none; browsers always send one cross-site).
- Links handed out are built by `protocols.hosts.link_base` from the same checked Host.
- With keys configured, /docs, /redoc and /openapi.json need a key like the API.
- While the server drains for shutdown, new requests and upgrades get 503 ServiceUnavailable;
  health and metrics still answer (they report the drain to load balancers and operators).
"""

from __future__ import annotations

import json
import uuid

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from voxscope.config import Settings
from voxscope.protocols.app_runtime import runtime_if_any
from voxscope.protocols.hosts import host_checked, same_origin
from voxscope.protocols.ws import install_log_filter, refusals
from voxscope.service.drain import SHUTDOWN_CODE, SHUTDOWN_MESSAGE, Drain
from voxscope.service.keys import KeyRing
from voxscope.service.metrics import wire_of

ACCESS_DENIED = "AccessDenied"
DOC_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
OPERATOR_PATHS = ("/health", "/health/live", "/health/ready", "/metrics")  # answer while draining

def _body(code: str, message: str) -> bytes:
    return json.dumps({"request_id": str(uuid.uuid4()), "code": code,
                       "message": message}).encode()


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str,
                  message: str) -> None:
    body = _body(code, message)
    rt = runtime_if_any(scope.get("app"))  # the app Starlette serves (set before middleware)
    if rt is not None:
        rt.metrics.refused(wire_of(scope["type"], scope.get("path", "")), code)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if scope["type"] == "websocket":
        refusals.note(scope.get("path", ""), status, code)
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": status,
                        "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- the middleware ----------------------------------------------------------------------------
class Guard:
    """Pure ASGI middleware (WebSockets included) applying the rules of this module."""

    def __init__(self, app: ASGIApp, settings: Settings, keys: KeyRing, drain: Drain) -> None:
        self.app = app
        self.settings = settings
        self.keys = keys
        self.drain = drain
        install_log_filter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        refusal = self._check(scope)
        if refusal is not None:
            return await _refuse(scope, receive, send, *refusal)
        return await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> tuple[int, str, str] | None:
        headers = Headers(scope=scope)
        if self.drain.draining and scope.get("path") not in OPERATOR_PATHS:
            return 503, SHUTDOWN_CODE, SHUTDOWN_MESSAGE
        if not self.keys.enabled:
            host = headers.get("host")
            if host is not None and not host_checked(self.settings, host, scope):
                return 403, ACCESS_DENIED, (
                    f"Host {host!r} is not served without API keys; add it to allowed_hosts "
                    "or configure API keys")
            origin = headers.get("origin")
            if origin is not None and not (host and same_origin(origin, host, scope)):
                return 403, ACCESS_DENIED, f"cross-origin request from {origin!r} refused"
        elif scope.get("path") in DOC_PATHS and not self.keys.admits(headers):
            return 401, "InvalidApiKey", "Invalid API-key provided."
        return None
