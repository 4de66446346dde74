"""Sync recognition: `POST /api/v1/services/aigc/multimodal-generation/generation` (REST §3).

What `dashscope.MultiModalConversation.call(model='qwen3-asr-flash', …)` sends: the audio in a
user message (http(s) URL, data: URI, or `oss://` key after the SDK's upload), an optional system
message whose text is context for the decoder, `parameters.asr_options` (`language`,
`enable_itn`). Limits as the product doc gives them: 10 MB (`max_sync_bytes`) and 5 minutes
(`max_sync_seconds`, measured on the decoded audio). The answer is one JSON document, or with
`X-DashScope-SSE: enable` a stream of SSE events, one per recognised sentence as the engine
produces it: deltas with `incremental_output: true` (last event `content: []`), else the text so
far (last event repeats it all).

Not produced: `emotion` (no local model recognises emotion; the annotation carries only `type`
and `language`). `enable_itn` is accepted, but Whisper always writes numbers its own way (mostly
digits), so it changes nothing.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from voxscope.audio.errors import AudioFormatError
from voxscope.audio.file_decoder import TARGET_RATE
from voxscope.config import Profile
from voxscope.engine.offline import OfflineOptions, Sentence
from voxscope.errors import ServiceError
from voxscope.inputs import materialize
from voxscope.protocols import errors
from voxscope.protocols.app_runtime import runtime_of
from voxscope.protocols.errors import ProtocolError, new_request_id
from voxscope.protocols.params import opt_bool
from voxscope.protocols.rest import context_tokens, json_body, section
from voxscope.protocols.uploads import check_upload_owner
from voxscope.service.auth import Principal
from voxscope.service.capacity import Slot
from voxscope.service.requests import SYNC_KINDS, resolve_language, resolve_profile
from voxscope.service.runtime import Runtime
from voxscope.service.transcribe import (
    count_tokens,
    decode_capped,
    joined,
    main_language,
    separator,
    slices,
    work_dir,
)
from voxscope.service.usage import known_model

log = logging.getLogger(__name__)

router = APIRouter()

STREAM_WINDOW_S = 10.0


# -- request -----------------------------------------------------------------------------------
@dataclass
class SyncRequest:
    profile: Profile
    audio: str
    context: str
    language: str | None
    languages: tuple[str, ...]
    incremental: bool


def _content_items(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list) or not all(isinstance(c, dict) for c in content):
        raise ProtocolError(errors.INVALID_PARAMETER, "each message's content must be a list of objects")
    return content


def parse_request(rt: Runtime, body: dict[str, Any]) -> SyncRequest:
    profile = resolve_profile(rt.settings, body.get("model"), SYNC_KINDS)
    inp = section(body, "input")
    messages = inp.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ProtocolError(errors.INVALID_PARAMETER, "input.messages must be a non-empty list of messages")
    context: list[str] = []
    audio: list[Any] = []
    for m in messages:
        role = m.get("role")
        for item in _content_items(m):
            if role == "system" and isinstance(item.get("text"), str) and item["text"].strip():
                context.append(item["text"].strip())
            elif role == "user" and "audio" in item:
                audio.append(item["audio"])
    if not audio:
        raise ProtocolError(errors.INVALID_PARAMETER, "no audio: put {\"audio\": <URL>} in a user message")
    if len(audio) > 1:
        raise ProtocolError(errors.INVALID_PARAMETER, "one audio per request")
    if not isinstance(audio[0], str) or not audio[0].strip():
        raise ProtocolError(errors.INVALID_PARAMETER, "the audio must be a URL string")
    params = section(body, "parameters")
    asr = section(params, "asr_options")
    languages = tuple(rt.engine.languages(profile))
    language = resolve_language(asr.get("language"), languages, profile.name,
                                field="asr_options.language")
    opt_bool(asr, "enable_itn", False)  # accepted; see the module docstring
    opt_bool(asr, "enable_lid", True)
    return SyncRequest(profile, audio[0].strip(), "\n".join(context), language, languages,
                       opt_bool(params, "incremental_output", False))


def load_audio(rt: Runtime, ref: str) -> np.ndarray:
    """Fetch/resolve and decode the referenced audio within the sync limits (blocking)."""
    workdir = work_dir(rt.settings)
    try:
        try:
            path = materialize(ref, rt.settings, workdir, max_bytes=rt.settings.max_sync_bytes)
            return decode_capped(path, rt.settings.max_sync_seconds)
        except AudioFormatError as exc:  # this API names every unreadable audio alike
            raise ProtocolError(errors.BAD_AUDIO, exc.message) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- response ----------------------------------------------------------------------------------
def _choice(text: str | None, language: str | None, finish: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": [] if text is None else [{"text": text}]}
    if language is not None:
        message["annotations"] = [{"type": "audio_info", "language": language}]
    return {"finish_reason": finish, "message": message}


def _usage(context_tokens: int, output_tokens: int, seconds: int) -> dict[str, Any]:
    return {"input_tokens_details": {"text_tokens": context_tokens},
            "output_tokens_details": {"text_tokens": output_tokens}, "seconds": seconds}


def _sse(n: int, payload: dict[str, Any], event: str = "result", status: int = 200) -> str:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    extra = f"status:{status}\n" if event == "error" else ""
    return f"id:{n}\nevent:{event}\n:HTTP_STATUS/{status}\n{extra}data:{data}\n\n"


@router.post("/api/v1/services/aigc/multimodal-generation/generation")
@router.post("/api/v1/services/aigc/multimodal-generation/generation/")
async def generation(request: Request) -> Response:
    rt = runtime_of(request)
    principal = rt.keys.authenticate(request.headers)
    owner = principal.owner
    body: dict[str, Any] = {}
    try:
        await rt.usage.admit_async(principal)  # daily audio hours
        body = await json_body(request)
        req = await run_in_threadpool(parse_request, rt, body)
        check_upload_owner(rt, req.audio, owner)
    except ServiceError:
        rt.usage.record(principal, known_model(rt.settings, body.get("model")), failures=1)
        raise
    stream = request.headers.get("x-dashscope-sse", "").strip().lower() == "enable"
    try:
        slot = rt.capacity.slot(principal)
        try:
            response = await _recognize(rt, req, stream, slot, principal)
        except BaseException:
            slot.release()
            raise
    except Exception:
        rt.usage.record(principal, req.profile.name, failures=1)
        raise
    if not isinstance(response, StreamingResponse):
        slot.release()
    return response


async def _recognize(rt: Runtime, req: SyncRequest, stream: bool, slot: Slot,
                     principal: Principal) -> Response:
    """The answer; a streamed one releases the slot when its stream ends (or is dropped).
    Usage is recorded once with the answer's `usage.seconds` (a failed stream: as a failure)."""
    audio = await run_in_threadpool(load_audio, rt, req.audio)
    seconds = max(1, math.ceil(audio.size / TARGET_RATE - 1e-6))
    opts = OfflineOptions(language=req.language, allowed_languages=req.languages,
                          prompt=req.context or None)
    if stream:
        # Shorter windows decoded one at a time: the first chunk arrives after ~10 s of audio is
        # decoded instead of a whole batch of 30 s windows (about half the wait for a 30 s clip,
        # for ~10 % more total time).
        opts = replace(opts, max_window_s=STREAM_WINDOW_S, batch=1)
    context_count = await run_in_threadpool(context_tokens, rt, req.profile, req.context)
    request_id = new_request_id()

    def sentences() -> Iterator[Sentence]:
        return rt.engine.transcribe_stream(req.profile, slices(audio), opts)

    if not stream:
        result = await run_in_threadpool(lambda: list(sentences()))
        text = joined(result)
        language = main_language(result, req.language)
        out_tokens = await run_in_threadpool(count_tokens, rt, req.profile, text, language)
        rt.usage.record(principal, req.profile.name, seconds)
        return JSONResponse({"request_id": request_id,
                             "output": {"choices": [_choice(text, language, "stop")]},
                             "usage": _usage(context_count, out_tokens, seconds)})

    async def events() -> AsyncIterator[str]:
        n = 0
        done: list[Sentence] = []
        text = ""
        metered = False
        try:
            async for s in iterate_in_threadpool(sentences()):
                piece = separator(text, s) + s.text
                text += piece
                done.append(s)
                n += 1
                tokens = await run_in_threadpool(count_tokens, rt, req.profile, text, s.language)
                yield _sse(n, {"request_id": request_id,
                               "output": {"choices": [_choice(piece if req.incremental else text,
                                                              s.language, "null")]},
                               "usage": _usage(context_count, tokens, seconds)})
            language = main_language(done, req.language)
            tokens = await run_in_threadpool(count_tokens, rt, req.profile, text, language)
            final = _choice(None, None, "stop") if req.incremental else _choice(text, language, "stop")
            rt.usage.record(principal, req.profile.name, seconds)
            metered = True
            yield _sse(n + 1, {"request_id": request_id, "output": {"choices": [final]},
                               "usage": _usage(context_count, tokens, seconds)})
        except Exception as exc:  # the engine failed mid-stream: the SDK reads event:error
            log.exception("sync recognition failed")
            code, message = errors.INTERNAL_ERROR, str(exc) or "internal error"
            if isinstance(exc, ServiceError):
                code, message = exc.code, exc.message
            rt.usage.record(principal, req.profile.name, failures=1)
            metered = True
            yield _sse(n + 1, {"request_id": request_id, "code": code, "message": message},
                       event="error", status=500)
        finally:
            slot.release()
            if not metered:  # the client left mid-stream: its audio was recognized all the same
                rt.usage.record(principal, req.profile.name, seconds)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                             background=BackgroundTask(slot.release))
