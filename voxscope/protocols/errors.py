"""DashScope error codes and envelopes shared by every protocol adapter."""

from __future__ import annotations

import uuid

from fastapi.responses import JSONResponse

# The codes live beside ServiceError (the service layer raises them too); named here as well
# because every adapter reads them as `errors.X`.
from voxscope.errors import (  # noqa: F401
    BAD_AUDIO,
    IDLE_TIMEOUT,
    INTERNAL_ERROR,
    INVALID_API_KEY,
    INVALID_PARAMETER,
    MODEL_NOT_FOUND,
    PROTOCOL_ERROR,
    THROTTLING,
    UNAUTHORIZED_MESSAGE,
    UNSUPPORTED,
    ServiceError,
)


class ProtocolError(ServiceError):
    """A request a protocol adapter refuses."""


def new_request_id() -> str:
    return str(uuid.uuid4())


def error_response(status: int, code: str, message: str,
                   request_id: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={
        "request_id": request_id or new_request_id(), "code": code, "message": message})
