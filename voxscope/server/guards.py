"""Who may reach the server before any route runs: Host / Origin checks, docs auth, draining,
and quiet, rate-limited logging of refused WebSocket upgrades.

- No-key (local) mode: only loopback `Host` values, the address the client actually connected
  to, or `allowed_hosts` are served (DNS rebinding gives a foreign name); a request with an
  `Origin` must be same-origin (SDK clients send none; browsers always send one cross-site).
- Links handed out (upload_host, transcription_url) come from `public_url`, else a checked Host,
  else the socket's own address: never from an unchecked Host header.
- With keys configured, /docs, /redoc and /openapi.json need a key like the API.
- While the server drains for shutdown, new requests and upgrades get 503 ServiceUnavailable.
"""

from __future__ import annotations

import contextvars
import ipaddress
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from voxscope.config import Settings
from voxscope.server.auth import KeyChecker

if TYPE_CHECKING:
    from voxscope.server.shutdown import Drain

log = logging.getLogger(__name__)

ACCESS_DENIED = "AccessDenied"
SERVICE_UNAVAILABLE = "ServiceUnavailable"
DOC_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")

# Set in the task that refused a WebSocket upgrade: uvicorn's own lines about it are then dropped
# (its "ASGI callable returned without completing handshake" is an ERROR for every refusal).
_refused: contextvars.ContextVar[bool] = contextvars.ContextVar("voxscope_refused", default=False)


# -- hosts -------------------------------------------------------------------------------------
def split_host(value: str) -> tuple[str, int | None]:
    """`name[:port]` / `[v6][:port]` -> (lower-case name without brackets, port or None)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:
        name, port = value, ""
    return name.rstrip("."), int(port) if port.isdigit() else None


def _is_loopback(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_checked(settings: Settings, host: str, scope: Mapping[str, Any]) -> bool:
    """Whether a Host header value may be trusted: loopback, the address this connection really
    reached (a literal IP cannot be rebound), or one of `allowed_hosts`."""
    name, _ = split_host(host)
    if not name:
        return False
    allowed = {split_host(h)[0] for h in settings.allowed_hosts}
    if "*" in allowed or name in allowed or _is_loopback(name):
        return True
    server = scope.get("server")
    return bool(server) and name == str(server[0]).lower()


def link_base(request: HTTPConnection) -> str:
    """Base URL of links handed out to this caller (no trailing slash)."""
    settings: Settings = request.app.state.runtime.settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    scheme = "https" if request.url.scheme in ("https", "wss") else "http"
    host = request.headers.get("host")
    if host and host_checked(settings, host, request.scope):
        return f"{scheme}://{host}"
    server = request.scope.get("server")  # the socket's own address: the client cannot choose it
    name, port = (server[0], server[1]) if server else (settings.host, settings.port)
    if ":" in str(name):
        name = f"[{name}]"
    return f"{scheme}://{name}:{port}"


def _same_origin(origin: str, host: str, scope: Mapping[str, Any]) -> bool:
    try:
        parts = urlsplit(origin)
        o_port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False  # includes the opaque "null" origin
    default = 443 if parts.scheme == "https" else 80
    h_name, h_port = split_host(host)
    if h_port is None:
        h_port = 443 if scope.get("scheme") in ("https", "wss") else 80
    return parts.hostname.lower() == h_name and (o_port or default) == h_port


# -- refusals ----------------------------------------------------------------------------------
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


def _body(code: str, message: str) -> bytes:
    return json.dumps({"request_id": str(uuid.uuid4()), "code": code,
                       "message": message}).encode()


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str,
                  message: str) -> None:
    body = _body(code, message)
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

    def __init__(self, app: ASGIApp, settings: Settings, keys: KeyChecker, drain: Drain) -> None:
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
        if self.drain.draining:
            return 503, SERVICE_UNAVAILABLE, "the server is shutting down; retry later"
        if not self.keys.enabled:
            host = headers.get("host")
            if host is not None and not host_checked(self.settings, host, scope):
                return 403, ACCESS_DENIED, (
                    f"Host {host!r} is not served without API keys; add it to allowed_hosts "
                    "or configure API keys")
            origin = headers.get("origin")
            if origin is not None and not (host and _same_origin(origin, host, scope)):
                return 403, ACCESS_DENIED, f"cross-origin request from {origin!r} refused"
        elif scope.get("path") in DOC_PATHS and not self.keys.allows_headers(headers):
            return 401, "InvalidApiKey", "Invalid API-key provided."
        return None
