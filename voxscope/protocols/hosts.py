"""Host and Origin headers: which Host values may be trusted, whether an Origin is the page's
own, and the base URL of links handed out (never built from an unchecked Host header)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from voxscope.config import Settings
from voxscope.protocols.app_runtime import runtime_of


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


def is_loopback(name: str) -> bool:
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
    if "*" in allowed or name in allowed or is_loopback(name):
        return True
    server = scope.get("server")
    return bool(server) and name == str(server[0]).lower()


def link_base(request: HTTPConnection) -> str:
    """Base URL of links handed out to this caller (no trailing slash)."""
    settings: Settings = runtime_of(request).settings
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


def same_origin(origin: str, host: str, scope: Mapping[str, Any]) -> bool:
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
