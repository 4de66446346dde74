"""Async file transcription (REST §2): submit, task status, cancel, list, result documents.

Two request forms share the endpoint: Qwen filetrans (`input.file_url`, one result) and the
Paraformer / Fun-ASR file models (`input.file_urls`, one result per file). The work itself is
done by the task workers (voxscope.jobs); this module only speaks the wire format.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from voxscope.config import Profile, Settings
from voxscope.inputs import precheck
from voxscope.jobs.repository import CANCELED, FAILED, FINISHED, PENDING, RUNNING, SUCCEEDED, TaskView
from voxscope.jobs.results import billed_seconds
from voxscope.protocols import errors
from voxscope.protocols.app_runtime import runtime_of
from voxscope.protocols.errors import ProtocolError, error_response, new_request_id
from voxscope.protocols.hosts import link_base
from voxscope.protocols.params import opt_bool
from voxscope.protocols.rest import caller, context_tokens, json_body, ok, section
from voxscope.protocols.uploads import check_upload_owner
from voxscope.service.limits import queued_tasks_ok
from voxscope.service.requests import (
    FILE_KINDS,
    hotwords_for,
    refuse_unsupported,
    resolve_language,
    resolve_profile,
)
from voxscope.service.usage import known_model

router = APIRouter()

MAX_FILES = 100
FILE_URL = "InvalidParameter.FileUrl"


def _stamp(t: datetime | None) -> str | None:
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if t else None


def _urls(profile: Profile, inp: dict[str, Any], settings: Settings) -> list[str]:
    if profile.file_form == "qwen":
        url = inp.get("file_url")
        if not isinstance(url, str) or not url.strip():
            raise ProtocolError(errors.INVALID_PARAMETER, "input.file_url is required (one URL)")
        urls = [url.strip()]
    else:
        urls = inp.get("file_urls")
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise ProtocolError(errors.INVALID_PARAMETER,
                                "input.file_urls is required (a non-empty list of URLs)")
        if len(urls) > MAX_FILES:
            raise ProtocolError(errors.INVALID_PARAMETER, f"at most {MAX_FILES} files per task")
        urls = [u.strip() for u in urls]
    for u in urls:
        if u[:5].lower() == "data:":
            raise ProtocolError(FILE_URL, "file tasks take URLs, not data: URIs (use the sync "
                                          "API or the upload flow for local audio)")
        precheck(u, settings)
    return urls


def _channels(params: dict[str, Any]) -> list[int]:
    value = params.get("channel_id")
    if value is None:
        return [0]
    if not isinstance(value, list) or not value:
        raise ProtocolError(errors.INVALID_PARAMETER, "channel_id must be a non-empty list")
    out: list[int] = []
    for v in value:
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 64:
            raise ProtocolError(errors.INVALID_PARAMETER,
                                f"channel_id entries must be track numbers from 0, got {v!r}")
        if v not in out:
            out.append(v)
    return out


async def _options(request: Request, owner: str, profile: Profile,
                   params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    rt = runtime_of(request)
    refuse_unsupported(params, body.get("resources"))
    languages = rt.engine.languages(profile)
    language = resolve_language(params.get("language"), languages, profile.name)
    hints = params.get("language_hints")
    if hints is not None:
        if not isinstance(hints, list) or not all(isinstance(h, str) for h in hints):
            raise ProtocolError(errors.INVALID_PARAMETER, "language_hints must be a list of strings")
        hinted = [resolve_language(h, languages, profile.name, field="language_hints")
                  for h in hints if h]
        # One hint fixes the language; several only narrow detection (files of a task may each
        # be in a different one of them).
        if len(hinted) == 1 and language is None:
            language = hinted[0]
        elif hinted:
            languages = [h for h in hinted if h]
    prompt = None
    corpus = params.get("corpus")
    if corpus is not None:
        if not isinstance(corpus, dict) or not isinstance(corpus.get("text", ""), str):
            raise ProtocolError(errors.INVALID_PARAMETER, "corpus must be {\"text\": <string>}")
        prompt = corpus.get("text") or None
        await run_in_threadpool(context_tokens, rt, profile, prompt)
    hotwords = await run_in_threadpool(hotwords_for, rt.vocabularies, owner, profile,
                                       params.get("vocabulary_id"))
    for key in ("enable_itn", "enable_words", "timestamp_alignment_enabled"):
        opt_bool(params, key, False)
    return {"language": language, "languages": languages, "prompt": prompt,
            "hotwords": hotwords, "channels": _channels(params),
            "enable_words": opt_bool(params, "enable_words", False),
            "remove_disfluencies": opt_bool(params, "disfluency_removal_enabled", False)}


@router.post("/api/v1/services/audio/asr/transcription")
async def submit(request: Request) -> JSONResponse:
    rt = runtime_of(request)
    principal = rt.keys.authenticate(request.headers)
    owner = principal.owner
    body: dict[str, Any] = {}
    try:
        await rt.usage.admit_async(principal)  # daily audio hours
        body = await json_body(request)
        profile = resolve_profile(rt.settings, body.get("model"), FILE_KINDS)
        urls = _urls(profile, section(body, "input"), rt.settings)
        for url in urls:
            check_upload_owner(rt, url, owner)
        options = await _options(request, owner, profile, section(body, "parameters"), body)
        await run_in_threadpool(queued_tasks_ok, rt.db, owner, principal.limits)
        task_id = await run_in_threadpool(rt.tasks.submit, owner, profile.name,
                                          profile.file_form, urls, {"options": options})
    except Exception:  # a refusal after authentication counts as a failed request
        rt.usage.record(principal, known_model(rt.settings, body.get("model")), failures=1)
        raise
    # The task's audio is recorded by the worker that finishes it (tasks, audio_seconds).
    rt.usage.record(principal, profile.name)
    return ok({"output": {"task_id": task_id, "task_status": "PENDING"}})


def _base(request: Request) -> str:
    return link_base(request)


def _result_url(request: Request, task_id: str, index: int) -> str:
    rt = runtime_of(request)
    path = f"/api/v1/results/{task_id}/{index}.json"
    return f"{_base(request)}{path}?{urlencode(rt.signer.sign_path(path, rt.settings.result_ttl_s))}"


def progress(view: TaskView) -> float | None:
    """Share of the task's audio done, 0..1 (files weigh alike; the running one by position).

    An extra key in `output`: the SDKs pass unknown output keys through (TranscriptionOutput
    takes **kwargs), so DashScope clients are unaffected. None for failed or cancelled tasks."""
    t = view.task
    if t.status == SUCCEEDED:
        return 1.0
    if t.status == PENDING:
        return 0.0
    if t.status != RUNNING or not view.files:
        return None
    done = sum(1 for f in view.files if f.status in (SUCCEEDED, FAILED))
    current = min(t.progress_s / t.duration_s, 1.0) if t.duration_s > 0 and done < len(view.files) \
        else 0.0
    return round(min((done + current) / len(view.files), 0.999), 3)


def task_output(request: Request, view: TaskView) -> tuple[dict[str, Any], dict[str, Any] | None]:
    t = view.task
    out: dict[str, Any] = {"task_id": t.id, "task_status": t.status,
                           "submit_time": _stamp(t.submitted)}
    if t.scheduled:
        out["scheduled_time"] = _stamp(t.scheduled)
    if t.ended:
        out["end_time"] = _stamp(t.ended)
    share = progress(view)
    if share is not None:
        out["progress"] = share
    usage = None
    if t.status in (SUCCEEDED, FAILED):
        seconds = billed_seconds(view.files)  # what the worker recorded as usage
        if t.form == "qwen":
            f = view.files[0]
            if f.status == SUCCEEDED:
                out["result"] = {"file_url": f.url,
                                 "transcription_url": _result_url(request, t.id, f.index)}
            usage = {"seconds": math.ceil(seconds)}
        else:
            results = []
            for f in view.files:
                item: dict[str, Any] = {"file_url": f.url, "subtask_status": f.status}
                if f.status == SUCCEEDED:
                    item["transcription_url"] = _result_url(request, t.id, f.index)
                else:
                    item["code"], item["message"] = f.code or FAILED, f.message or ""
                results.append(item)
            ok_count = sum(1 for f in view.files if f.status == SUCCEEDED)
            out["results"] = results
            out["task_metrics"] = {"TOTAL": len(view.files), "SUCCEEDED": ok_count,
                                   "FAILED": len(view.files) - ok_count}
            usage = {"duration": math.ceil(seconds)}
    if t.status == FAILED:
        out["code"], out["message"] = t.code or "InternalError", t.message or ""
    return out, usage


@router.get("/api/v1/tasks/{task_id}")
async def fetch(request: Request, task_id: str) -> JSONResponse:
    owner = caller(request)
    rt = runtime_of(request)
    view = await run_in_threadpool(rt.tasks.repo.view, task_id, owner)
    if view is None:  # what DashScope's gateway answers for an id it does not know (REST §2.3)
        return ok({"output": {"task_id": task_id, "task_status": "UNKNOWN"}})
    out, usage = task_output(request, view)
    return ok({"output": out, **({"usage": usage} if usage else {})})


@router.post("/api/v1/tasks/{task_id}/cancel")
async def cancel(request: Request, task_id: str) -> JSONResponse:
    owner = caller(request)
    rt = runtime_of(request)
    status = await run_in_threadpool(rt.tasks.repo.cancel, task_id, owner)
    if status is None:
        raise ProtocolError("InvalidParameter.TaskNotFound", f"task not found: {task_id}", 404)
    if status != CANCELED:
        raise ProtocolError("InvalidParameter.TaskStatus",
                            f"only PENDING tasks can be canceled; task {task_id} is {status}")
    return ok({"output": {"task_id": task_id, "task_status": CANCELED}})


def _when(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    for fmt in ("%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise ProtocolError(errors.INVALID_PARAMETER, f"{name} must look like 20250101120000")


def _page_int(value: str | None, name: str, default: int, hi: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit() or not 1 <= int(value) <= hi:
        raise ProtocolError(errors.INVALID_PARAMETER, f"{name} must be an integer from 1 to {hi}")
    return int(value)


@router.get("/api/v1/tasks")
async def list_tasks(request: Request) -> JSONResponse:
    owner = caller(request)
    rt = runtime_of(request)
    q = request.query_params
    status = q.get("status") or None
    if status and status.upper() not in ("PENDING", "RUNNING", *FINISHED):
        raise ProtocolError(errors.INVALID_PARAMETER, f"unknown status {status!r}")
    page_no = _page_int(q.get("page_no"), "page_no", 1, 1 << 20)
    page_size = _page_int(q.get("page_size"), "page_size", 10, 100)
    total, views = await run_in_threadpool(
        lambda: rt.tasks.repo.page(owner, status=status.upper() if status else None,
                                   model=q.get("model_name") or None,
                                   start=_when(q.get("start_time"), "start_time"),
                                   end=_when(q.get("end_time"), "end_time"),
                                   page_no=page_no, page_size=page_size))
    tasks = []
    for v in views:
        out, _ = task_output(request, v)
        tasks.append({**out, "model": v.task.model})
    return ok({"page_no": page_no, "page_size": page_size, "total": total, "tasks": tasks})


@router.get("/api/v1/results/{task_id}/{index}.json")
async def result_document(request: Request, task_id: str, index: int) -> JSONResponse:
    """The result of one file: no API key, a signed expiring link instead (like DashScope's)."""
    rt = runtime_of(request)
    path = f"/api/v1/results/{task_id}/{index}.json"
    why = rt.signer.check_path(path, request.query_params.get("Expires"),
                               request.query_params.get("Signature"))
    if why is not None:
        return error_response(403, "AccessDenied", why, new_request_id())
    f = await run_in_threadpool(rt.tasks.repo.file, task_id, index)
    if f is None or f.result is None:
        return error_response(404, "NotFound", "no result for this file", new_request_id())
    return JSONResponse(f.result)
