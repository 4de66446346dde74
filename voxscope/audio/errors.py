"""Errors raised for audio the server cannot accept."""

from __future__ import annotations

from voxscope.errors import ServiceError


class AudioFormatError(ServiceError, ValueError):
    """Audio the server cannot accept.

    ``code`` is a DashScope-style error code (sent back to the client as is) and
    ``message`` says what is wrong in plain words.
    """

    def __init__(self, message: str, code: str = "InvalidParameter") -> None:
        # One error family: a ServiceError (400) that the protocols render like any other; still a
        # ValueError for callers that catch that.
        super().__init__(code, message, 400)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"AudioFormatError(code={self.code!r}, message={self.message!r})"
