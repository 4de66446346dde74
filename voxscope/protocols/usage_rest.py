"""`GET /api/v1/usage?since=YYYY-MM-DD&until=YYYY-MM-DD`: the caller's own usage, per model and UTC
day, in DashScope's envelope (`request_id`, `output.usage`: one row per key, model and day)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from voxscope.protocols.app_runtime import runtime_of
from voxscope.protocols.rest import ok
from voxscope.service.usage import parse_day

router = APIRouter()


@router.get("/api/v1/usage")
async def usage(request: Request, since: str | None = None, until: str | None = None) -> JSONResponse:
    rt = runtime_of(request)
    principal = rt.keys.authenticate(request.headers)
    first, last = parse_day(since, "since"), parse_day(until, "until")

    def read() -> list[dict]:
        rt.usage.flush()  # this server's pending records first: a caller reads its own at once
        return [r.as_dict() for r in rt.usage.report(principal.owner, first, last)]

    rows = await run_in_threadpool(read)
    # a key sees only its own rows (tokens see their key's): filtered by the caller's owner
    return ok({"output": {"usage": rows}})
