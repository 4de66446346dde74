"""The one error shape every layer raises for a request it refuses: a DashScope error code, a
message for the client, and the HTTP status a REST answer carries."""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, code: str, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
                f"http_status={self.http_status})")
