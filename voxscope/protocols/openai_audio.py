"""OpenAI-compatible speech to text: `POST /v1/audio/transcriptions` and `/v1/audio/translations`.

For clients written against OpenAI's audio API (the `openai` SDK with `base_url=http://HOST:PORT/v1`).
multipart/form-data with `file`, `model` (any sync profile or alias, `whisper-1` included),
`language`, `prompt`, `response_format` (json | text | srt | vtt | verbose_json),
`timestamp_granularities[]` (segment | word; verbose_json), `temperature` (accepted, ignored:
decoding is beam search with voxscope's own fallback). Translation is Whisper's translate task:
English output. The key comes as `Authorization: Bearer`; errors use OpenAI's shape
`{"error": {"message", "type", "param", "code"}}`. Files up to 25 MB, as OpenAI's limit, and
audio up to `max_sync_seconds` (5 min by default, the sync API's cap; measured while decoding,
so a long file is refused before any of it is transcribed).

verbose_json segments are voxscope's sentences. Of the per-segment decoder statistics OpenAI
returns, `avg_logprob` is the mean log word probability and `compression_ratio` is computed from
the text as Whisper does; `no_speech_prob` is 0 (speech is VAD-gated, not scored), `temperature`
0, `seek` the segment start in 10 ms frames, `tokens` the segment text's token ids.
"""

from __future__ import annotations

import math
import shutil
import zlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxscope.audio.errors import AudioFormatError
from voxscope.audio.file_decoder import TARGET_RATE
from voxscope.config import Profile
from voxscope.engine.offline import OfflineOptions, Sentence
from voxscope.errors import (
    INVALID_API_KEY,
    INVALID_PARAMETER,
    MODEL_NOT_FOUND,
    THROTTLING,
    THROTTLING_QUOTA,
    THROTTLING_RATE,
    ServiceError,
)
from voxscope.protocols.app_runtime import runtime_of
from voxscope.protocols.uploads import BodyTooLarge, read_form
from voxscope.service.auth import Principal
from voxscope.service.formats import srt, vtt
from voxscope.service.requests import SYNC_KINDS, resolve_language, resolve_profile
from voxscope.service.runtime import Runtime
from voxscope.service.transcribe import (
    AUDIO_TOO_LONG,
    decode_capped,
    joined,
    main_language,
    slices,
    work_dir,
)
from voxscope.service.usage import known_model

router = APIRouter()

MAX_FILE_BYTES = 25 << 20
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")

LANGUAGE_NAMES = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian", "mk": "macedonian",
    "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian", "ne": "nepali",
    "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer",
    "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan",
    "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi", "gu": "gujarati",
    "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek", "fo": "faroese",
    "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala",
    "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}


# Service refusals on OpenAI's wire: DashScope code -> (HTTP status, error type, OpenAI code,
# message in OpenAI's words or None to keep the service's).
OPENAI_ERRORS: dict[str, tuple[int, str, str | None, str | None]] = {
    INVALID_API_KEY: (401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    MODEL_NOT_FOUND: (404, "invalid_request_error", "model_not_found", None),
    INVALID_PARAMETER: (400, "invalid_request_error", "invalid_value", None),
    THROTTLING: (429, "rate_limit_error", None, None),
    THROTTLING_RATE: (429, "rate_limit_error", "rate_limit_exceeded", None),
    THROTTLING_QUOTA: (429, "rate_limit_error", "rate_limit_exceeded", None),
}


class OpenAIError(ServiceError):
    """A refusal only this wire makes, with OpenAI's own code and error type."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(INVALID_PARAMETER, message, status, param=param)
        self.openai_code, self.kind = code, kind


def render(exc: ServiceError) -> JSONResponse:
    """Any ServiceError as OpenAI's error body `{"error": {message, type, param, code}}`."""
    if isinstance(exc, OpenAIError):
        status, kind, code, message = exc.http_status, exc.kind, exc.openai_code, exc.message
    else:
        default = (exc.http_status, "server_error" if exc.http_status >= 500
                   else "invalid_request_error", None, None)
        status, kind, code, words = OPENAI_ERRORS.get(exc.code, default)
        message = words or exc.message
    return JSONResponse(status_code=status, content={"error": {
        "message": message, "type": kind, "param": exc.param, "code": code}})


@router.post("/v1/audio/transcriptions")
async def transcriptions(request: Request) -> Response:
    return await _handle(request, "transcribe")


@router.post("/v1/audio/translations")
async def translations(request: Request) -> Response:
    return await _handle(request, "translate")


async def _handle(request: Request, task: str) -> Response:
    try:
        return await _serve(request, task)
    except ServiceError as exc:
        runtime_of(request).metrics.refused("openai", exc.code)
        return render(exc)


async def _serve(request: Request, task: str) -> Response:
    rt = runtime_of(request)
    principal = rt.keys.authenticate(request.headers)
    form: FormData | None = None
    try:
        await rt.usage.admit_async(principal)  # daily audio hours
        try:
            form = await read_form(request, MAX_FILE_BYTES + (64 << 10))
        except BodyTooLarge:
            raise OpenAIError(413, f"Maximum content size limit ({MAX_FILE_BYTES}) exceeded.",
                              param="file", code="file_too_large") from None
        except StarletteHTTPException as exc:
            raise OpenAIError(400, f"Could not parse multipart form: {exc.detail}") from None
        with rt.capacity.slot(principal):
            return await _transcribe_form(rt, form, task, principal)
    except Exception:  # a refusal or failure after authentication: counted once
        model = form.get("model") if form is not None else None
        rt.usage.record(principal, known_model(rt.settings, model), failures=1)
        raise
    finally:
        if form is not None:
            await form.close()


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise OpenAIError(400, f"'{name}' must be a text field", param=name)
    return value.strip() or None


async def _transcribe_form(rt: Runtime, form: FormData, task: str,
                           principal: Principal) -> Response:
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise OpenAIError(400, "'file' is a required property (a multipart file part)", param="file")
    model = _field(form, "model")
    if model is None:
        raise OpenAIError(400, "'model' is a required property", param="model")
    profile = resolve_profile(rt.settings, model, SYNC_KINDS)
    languages = tuple(await run_in_threadpool(rt.engine.languages, profile))
    language = resolve_language(_field(form, "language"), languages, profile.name)
    fmt = (_field(form, "response_format") or "json").lower()
    if fmt not in FORMATS:
        raise OpenAIError(400, f"'{fmt}' is not one of {list(FORMATS)} - 'response_format'",
                          param="response_format", code="invalid_value")
    grans = [g for name in ("timestamp_granularities[]", "timestamp_granularities")
             for g in form.getlist(name) if isinstance(g, str)]
    for g in grans:
        if g not in ("word", "segment"):
            raise OpenAIError(400, f"'{g}' is not one of ['word', 'segment'] - 'timestamp_granularities'",
                              param="timestamp_granularities", code="invalid_value")
    temperature = _field(form, "temperature")
    if temperature is not None:
        try:
            if not 0.0 <= float(temperature) <= 1.0:
                raise ValueError
        except ValueError:
            raise OpenAIError(400, "'temperature' must be a number from 0 to 1", param="temperature",
                              code="invalid_value") from None
    if file.size is not None and file.size > MAX_FILE_BYTES:
        raise OpenAIError(413, f"Maximum content size limit ({MAX_FILE_BYTES}) exceeded.",
                          param="file", code="file_too_large")
    opts = OfflineOptions(language=language, allowed_languages=languages, task=task,
                          prompt=_field(form, "prompt"))
    try:
        sentences, duration = await run_in_threadpool(_run, rt, profile, file, opts)
    except AudioFormatError as exc:
        raise OpenAIError(400, f"Invalid file format: {exc.message}", param="file",
                          code="invalid_value") from None
    except ServiceError as exc:  # from decode_capped: too long, or no audio at all
        if exc.code == AUDIO_TOO_LONG:
            raise OpenAIError(400, f"Audio file is too long: {exc.message}", param="file",
                              code="audio_too_long") from None
        raise OpenAIError(400, f"Invalid file format: {exc.message}", param="file",
                          code="invalid_value") from None
    text = joined(sentences)
    # Recorded with the seconds `usage` reports (the text formats carry none; same count).
    rt.usage.record(principal, profile.name, math.ceil(duration))
    if fmt == "text":
        return PlainTextResponse(text + "\n")
    if fmt == "srt":
        return PlainTextResponse(srt(sentences))
    if fmt == "vtt":
        return PlainTextResponse(vtt(sentences))
    usage = {"type": "duration", "seconds": math.ceil(duration)}
    if fmt == "json":
        return JSONResponse({"text": text, "usage": usage})
    code = "en" if task == "translate" else main_language(sentences, language)
    body: dict[str, Any] = {"task": task, "language": LANGUAGE_NAMES.get(code, code),
                            "duration": round(duration, 3), "text": text}
    if not grans or "segment" in grans:
        body["segments"] = await run_in_threadpool(_segments, rt, profile, sentences)
    if "word" in grans:
        body["words"] = [{"word": w.text, "start": round(w.start, 2), "end": round(w.end, 2)}
                         for s in sentences for w in s.words]
    body["usage"] = usage
    return JSONResponse(body)


def _run(rt: Runtime, profile: Profile, file: UploadFile,
         opts: OfflineOptions) -> tuple[list[Sentence], float]:
    """Transcribe the uploaded file (blocking); returns its sentences and duration."""
    workdir = work_dir(rt.settings)
    try:
        # FFmpeg reads a named file (a spooled upload may still live in memory).
        path = workdir / "upload"
        file.file.seek(0)
        with open(path, "wb") as out:
            shutil.copyfileobj(file.file, out, 1 << 20)
        # Decoded whole under the sync API's cap first: a file past it is refused as soon as the
        # decoder passes the cap, before any of it is transcribed (a small FLAC can hold hours).
        audio = decode_capped(path, rt.settings.max_sync_seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    sentences = list(rt.engine.transcribe_stream(profile, slices(audio), opts))
    return sentences, audio.size / TARGET_RATE


def _segments(rt: Runtime, profile: Profile, sentences: list[Sentence]) -> list[dict[str, Any]]:
    out = []
    for i, s in enumerate(sentences):
        data = s.text.encode()
        probs = [max(w.probability, 1e-6) for w in s.words]
        out.append({
            "id": i, "seek": int(s.begin * 100), "start": round(s.begin, 2), "end": round(s.end, 2),
            "text": " " + s.text if s.text and not s.text.startswith(" ") else s.text,
            "tokens": rt.engine.tokenize(profile, " " + s.text, s.language),
            "temperature": 0.0,
            "avg_logprob": round(sum(math.log(p) for p in probs) / len(probs), 4) if probs else 0.0,
            "compression_ratio": round(len(data) / len(zlib.compress(data)), 4) if data else 0.0,
            "no_speech_prob": 0.0,
        })
    return out
