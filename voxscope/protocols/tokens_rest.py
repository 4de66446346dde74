"""DashScope's temporary tokens: `POST /api/v1/tokens?expire_in_seconds=N` → `{token, expires_at}`.

A token (st-...) is minted with a permanent API key and stands in for it until `expires_at`
(unix seconds) on every endpoint; it is what a browser puts in a WebSocket URL."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from voxscope.protocols.app_runtime import runtime_of
from voxscope.service.keys import DEFAULT_TOKEN_TTL_S

router = APIRouter()


@router.post("/api/v1/tokens")
async def create_token(request: Request, expire_in_seconds: int = DEFAULT_TOKEN_TTL_S) -> JSONResponse:
    keys = runtime_of(request).keys
    token, expires_at = await run_in_threadpool(keys.mint, request.headers, expire_in_seconds)
    # DashScope answers with exactly these two fields at the top level
    return JSONResponse({"token": token, "expires_at": expires_at})
