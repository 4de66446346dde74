"""What every REST endpoint shares: API-key check, JSON body reading, DashScope error envelope."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxscope.errors import ServiceError
from voxscope.protocols import errors
from voxscope.protocols.app_runtime import runtime_if_any, runtime_of
from voxscope.protocols.errors import ProtocolError, error_response, new_request_id
from voxscope.protocols.json_body import BodyTooLarge, has_body, is_json_type, read_capped
from voxscope.protocols.json_body import loads as json_loads
from voxscope.service.metrics import wire_of

log = logging.getLogger(__name__)

MAX_JSON_BYTES = 16 << 20  # a sync call's base64 data URI (10 MB of audio) fits


def caller(request: Request) -> str:
    """Check the request's API key; returns the owner id its data is stored under."""
    return runtime_of(request).keys.authenticate(request.headers).owner


async def json_body(request: Request) -> dict[str, Any]:
    # A JSON type is required: a browser can send text/plain or form bodies cross-site without
    # a preflight, never application/json.
    if has_body(request) and not is_json_type(request.headers.get("content-type")):
        raise ProtocolError(errors.INVALID_PARAMETER, "Content-Type must be application/json", 415)
    try:
        raw = await read_capped(request, MAX_JSON_BYTES)
    except BodyTooLarge:
        raise ProtocolError(errors.INVALID_PARAMETER,
                            f"request body larger than {MAX_JSON_BYTES >> 20} MB", 413) from None
    try:
        body = json_loads(raw or b"{}")
    except ValueError as exc:
        raise ProtocolError(errors.INVALID_PARAMETER, f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError(errors.INVALID_PARAMETER, "request body must be a JSON object")
    return body


def section(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(errors.INVALID_PARAMETER, f"'{name}' must be an object")
    return value


MAX_CONTEXT_TOKENS = 10000  # the documented limit of context-biasing text


def context_tokens(rt, profile, text: str | None) -> int:
    """Tokens of a context text; refused above the documented 10 000 (blocking: tokenizes)."""
    n = len(rt.engine.tokenize(profile, text)) if text else 0
    if n > MAX_CONTEXT_TOKENS:
        raise ProtocolError(errors.INVALID_PARAMETER, f"the context text is {n} tokens long; at "
                            f"most {MAX_CONTEXT_TOKENS} are accepted")
    return n


def ok(payload: dict[str, Any], request_id: str | None = None) -> JSONResponse:
    return JSONResponse({"request_id": request_id or new_request_id(), **payload})


def install_error_handlers(app: FastAPI) -> None:
    """Every REST failure answers with DashScope's envelope `{request_id, code, message}`."""

    @app.exception_handler(ServiceError)
    async def _refused(request: Request, exc: ServiceError) -> JSONResponse:
        _count(request, exc.code)
        return error_response(exc.http_status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        _count(request, errors.INVALID_PARAMETER)
        where = ".".join(str(x) for x in first.get("loc", ()))
        return error_response(400, errors.INVALID_PARAMETER,
                              f"{where}: {first.get('msg', 'invalid request')}".strip(": "))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: errors.INVALID_API_KEY, 404: "NotFound", 405: "MethodNotAllowed"}.get(
            exc.status_code, errors.INVALID_PARAMETER)
        _count(request, code)
        return error_response(exc.status_code, code, str(exc.detail))


def _count(request: Request, code: str) -> None:
    """Every REST error answer is a refusal by code in /metrics."""
    rt = runtime_if_any(request)
    if rt is not None:
        rt.metrics.refused(wire_of("http", request.url.path), code)
