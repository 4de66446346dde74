"""Why an audio reference could not be turned into a local file."""

from __future__ import annotations

from voxscope.errors import ServiceError

# DashScope-style codes (the SDK's list only has `InvalidParameter`; the suffix says what failed).
FILE_URL = "InvalidParameter.FileUrl"  # not a reference voxscope can read (scheme, syntax, policy)
FILE_TOO_LARGE = "InvalidParameter.FileTooLarge"
FILE_NOT_FOUND = "InvalidParameter.FileNotFound"
DOWNLOAD_FAILED = "InvalidParameter.DownloadFailed"
PRIVATE_ADDRESS = "InvalidParameter.PrivateAddress"


class InputError(ServiceError):
    """An audio reference refused or unreadable; `code`/`message` go to the client as is."""
