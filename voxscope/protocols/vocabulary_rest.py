"""The hot-word VocabularyService (`/services/audio/asr/customization`) and the legacy phrase API.

Every SDK method is one POST whose `input.action` says what to do (REST §5.1).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from voxscope.protocols import errors
from voxscope.protocols.app_runtime import runtime_of
from voxscope.protocols.errors import ProtocolError
from voxscope.protocols.rest import caller, json_body, ok, section
from voxscope.service.requests import require_hotwords, resolve_profile
from voxscope.storage.vocabularies import VocabularyRecord

router = APIRouter()


def _time(record_time) -> str:
    return record_time.strftime("%Y-%m-%d %H:%M:%S")


def _summary(r: VocabularyRecord) -> dict[str, Any]:
    return {"vocabulary_id": r.vocabulary_id, "gmt_create": _time(r.created),
            "gmt_modified": _time(r.modified), "status": "OK"}


def _int(value: Any, name: str, default: int, lo: int, hi: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProtocolError(errors.INVALID_PARAMETER, f"{name} must be an integer from {lo} to {hi}")
    return value


@router.post("/api/v1/services/audio/asr/customization")
async def customization(request: Request) -> JSONResponse:
    owner = caller(request)
    body = await json_body(request)
    inp = section(body, "input")
    action = inp.get("action")
    vocabularies = runtime_of(request).vocabularies
    settings = runtime_of(request).settings
    if action == "create_vocabulary":
        target = inp.get("target_model")
        require_hotwords(resolve_profile(settings, target, field="target_model"))
        vid = await run_in_threadpool(vocabularies.create, owner, inp.get("prefix"),
                                      target, inp.get("vocabulary"))
        return ok({"output": {"vocabulary_id": vid}, "usage": {"count": 1}})
    if action == "list_vocabulary":
        prefix = inp.get("prefix")
        if prefix is not None and not isinstance(prefix, str):
            raise ProtocolError(errors.INVALID_PARAMETER, "prefix must be a string")
        page_index = _int(inp.get("page_index"), "page_index", 0, 0, 1 << 20)
        page_size = _int(inp.get("page_size"), "page_size", 10, 1, 100)
        rows = await run_in_threadpool(vocabularies.list, owner, prefix, page_index, page_size)
        return ok({"output": {"vocabulary_list": [_summary(r) for r in rows]},
                   "usage": {"count": 1}})
    if action == "query_vocabulary":
        r = await run_in_threadpool(vocabularies.get, owner, inp.get("vocabulary_id"))
        return ok({"output": {"vocabulary": r.words, "target_model": r.target_model,
                              "prefix": r.prefix, "gmt_create": _time(r.created),
                              "gmt_modified": _time(r.modified), "status": "OK"},
                   "usage": {"count": 1}})
    if action == "update_vocabulary":
        await run_in_threadpool(vocabularies.update, owner, inp.get("vocabulary_id"),
                                inp.get("vocabulary"))
        return ok({"output": {}, "usage": {"count": 1}})
    if action == "delete_vocabulary":
        await run_in_threadpool(vocabularies.delete, owner, inp.get("vocabulary_id"))
        return ok({"output": {}, "usage": {"count": 1}})
    raise ProtocolError(errors.INVALID_PARAMETER,
                        f"unknown action {action!r}; expected one of create_vocabulary, "
                        "list_vocabulary, query_vocabulary, update_vocabulary, delete_vocabulary")


_PHRASES_GONE = ("asr_phrase hot words (AsrPhraseManager / phrase_id) are not supported; "
                 "use VocabularyService and vocabulary_id instead")


@router.api_route("/api/v1/fine-tunes", methods=["GET", "POST"])
@router.api_route("/api/v1/fine-tunes/{path:path}", methods=["GET", "POST", "DELETE"])
async def phrases(request: Request, path: str = "") -> JSONResponse:
    caller(request)
    raise ProtocolError(errors.UNSUPPORTED, _PHRASES_GONE, 400)
