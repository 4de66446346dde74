"""OpenAI-compatible model list, `GET /v1/models`: every DashScope model name this server serves.

The OpenAI shape (`{"object": "list", "data": [{"id", "object", "created", "owned_by"}]}`), so
`openai.OpenAI(...).models.list()` works; each entry adds what a client needs to offer the model
(the web console builds its menus from it): `kind` (recognition, translation, chat, realtime,
file, sync), `languages`, `hotwords`, `sample_rates`, `aliases`; for file models `file_form`
(qwen: one `file_url`; paraformer: `file_urls`), for Gummy models `translation_targets`.
OpenAI's SDK keeps unknown fields.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from voxscope.errors import ServiceError
from voxscope.protocols.app_runtime import runtime_of
from voxscope.protocols.gummy import TRANSLATION_TARGETS
from voxscope.protocols.openai_audio import render

router = APIRouter()

_CREATED = 1735689600  # 2025-01-01: profiles have no creation date; OpenAI's field is required


@router.get("/v1/models")
async def list_models(request: Request) -> JSONResponse:
    rt = runtime_of(request)
    try:
        rt.keys.authenticate(request.headers)
    except ServiceError as exc:
        rt.metrics.refused("openai", exc.code)
        return render(exc)

    def entries() -> list[dict]:
        return [{"id": p.name, "object": "model", "created": _CREATED, "owned_by": "voxscope",
                 "kind": p.kind, "languages": rt.engine.languages(p), "hotwords": p.hotwords,
                 "sample_rates": p.sample_rates, "aliases": p.aliases,
                 **({"file_form": p.file_form} if p.kind == "file" else {}),
                 **({"translation_targets": list(TRANSLATION_TARGETS)}
                    if p.kind in ("translation", "chat") else {})}
                for p in rt.settings.profiles.values()]

    return JSONResponse({"object": "list", "data": await run_in_threadpool(entries)})
