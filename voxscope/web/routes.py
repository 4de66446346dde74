"""Serves the web console: `/` is its page, `/console/*` its static files (packaged, offline).

The console is one more client of the public APIs (inference WebSocket, uploads, tasks, usage,
vocabularies, /v1/models): nothing here reads or changes server state.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
# The page is small and changes with the package; make browsers revalidate rather than guess.
_NO_STALE = {"Cache-Control": "no-cache"}


class _Static(StaticFiles):
    def file_response(self, *args, **kwargs):  # type: ignore[override]
        response = super().file_response(*args, **kwargs)
        response.headers.update(_NO_STALE)
        return response


def install_console(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                            headers=_NO_STALE)

    app.mount("/console", _Static(directory=STATIC), name="console")
