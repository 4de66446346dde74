"""Errors raised for audio the server cannot accept."""

from __future__ import annotations


class AudioFormatError(ValueError):
    """Audio the server cannot accept.

    ``code`` is a DashScope-style error code (sent back to the client as is) and
    ``message`` says what is wrong in plain words.
    """

    def __init__(self, message: str, code: str = "InvalidParameter") -> None:
        super().__init__(message)
        self.code: str = code
        self.message: str = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"AudioFormatError(code={self.code!r}, message={self.message!r})"
