"""DashScope error codes and envelopes shared by every protocol adapter."""

from __future__ import annotations

import uuid

from fastapi.responses import JSONResponse

from voxscope.errors import ServiceError

# Codes from the SDK's own error list where one fits; specific suffixes say what went wrong.
INVALID_API_KEY = "InvalidApiKey"
INVALID_PARAMETER = "InvalidParameter"
MODEL_NOT_FOUND = "ModelNotFound"
UNSUPPORTED = "InvalidParameter.Unsupported"
THROTTLING = "Throttling.Capacity"
IDLE_TIMEOUT = "ClientError.IdleTimeout"
INTERNAL_ERROR = "InternalError"
BAD_AUDIO = "InvalidParameter.Audio"
PROTOCOL_ERROR = "InvalidParameter.Protocol"

UNAUTHORIZED_MESSAGE = "Invalid API-key provided."


class ProtocolError(ServiceError):
    """A request a protocol adapter refuses."""


def new_request_id() -> str:
    return str(uuid.uuid4())


def error_response(status: int, code: str, message: str,
                   request_id: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={
        "request_id": request_id or new_request_id(), "code": code, "message": message})
