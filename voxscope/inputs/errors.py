"""Why an audio reference could not be turned into a local file."""

from __future__ import annotations

# DashScope-style codes (the SDK's list only has `InvalidParameter`; the suffix says what failed).
FILE_URL = "InvalidParameter.FileUrl"  # not a reference voxscope can read (scheme, syntax, policy)
FILE_TOO_LARGE = "InvalidParameter.FileTooLarge"
FILE_NOT_FOUND = "InvalidParameter.FileNotFound"
DOWNLOAD_FAILED = "InvalidParameter.DownloadFailed"
PRIVATE_ADDRESS = "InvalidParameter.PrivateAddress"


class InputError(Exception):
    """An audio reference refused or unreadable; `code`/`message` go to the client as is."""

    def __init__(self, code: str, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"InputError(code={self.code!r}, message={self.message!r}, http_status={self.http_status})"
