"""The one typed way to reach the server's Runtime from a request, a WebSocket or the app: the app
factory stores it with `attach`, everything else reads it with `runtime_of` (not
`app.state.runtime`, which is untyped and would be spelled at every site)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from voxscope.service.runtime import Runtime


def attach(app: Starlette, runtime: Runtime) -> None:
    app.state.runtime = runtime


def runtime_of(source: HTTPConnection | Starlette) -> Runtime:
    """The Runtime of the app serving `source` (a Request or WebSocket), or of the app itself."""
    app = source if isinstance(source, Starlette) else source.app
    return app.state.runtime


def runtime_if_any(source: HTTPConnection | Starlette | None) -> Runtime | None:
    """As runtime_of, or None where there is no app or it was built without one (error handlers
    and middleware, which also serve bare apps)."""
    app = source.app if isinstance(source, HTTPConnection) else source
    return getattr(getattr(app, "state", None), "runtime", None)
