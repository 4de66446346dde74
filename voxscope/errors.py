"""The one error shape every layer raises for a request it refuses: a DashScope error code, a
message for the client, and the HTTP status a REST answer carries. Each protocol renders it on its
own wire (DashScope envelope, task-failed frame, realtime error event, OpenAI error body)."""

from __future__ import annotations

# DashScope codes, from the SDK's own error list where one fits; specific suffixes say what went
# wrong. Protocol renderers map these to their wire's codes with a table.
INVALID_API_KEY = "InvalidApiKey"
INVALID_PARAMETER = "InvalidParameter"
MODEL_NOT_FOUND = "ModelNotFound"
UNSUPPORTED = "InvalidParameter.Unsupported"
THROTTLING = "Throttling.Capacity"
THROTTLING_RATE = "Throttling.RateQuota"  # a key over its requests per second
THROTTLING_QUOTA = "Throttling.AllocationQuota"  # a key over its sessions or queued tasks
IDLE_TIMEOUT = "ClientError.IdleTimeout"
INTERNAL_ERROR = "InternalError"
BAD_AUDIO = "InvalidParameter.Audio"
PROTOCOL_ERROR = "InvalidParameter.Protocol"

UNAUTHORIZED_MESSAGE = "Invalid API-key provided."


class ServiceError(Exception):
    def __init__(self, code: str, message: str, http_status: int = 400,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        # Which request field was refused (e.g. "language"), for wires that report it.
        self.param = param

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
                f"http_status={self.http_status})")
