"""Which profile a request's model names, and whether the API asked serves it: the one rule every
protocol (through voxscope.service.requests) and the file-task runner apply, with one message per
refusal. It sits beside config/errors so that jobs/ can use it without importing the service layer
above it."""

from __future__ import annotations

from typing import Any

from voxscope.config import Profile, Settings
from voxscope.errors import INVALID_PARAMETER, MODEL_NOT_FOUND, ServiceError

# Which API serves which profile kinds; named in the "not served" refusal.
INFERENCE_KINDS = ("recognition", "translation", "chat")
REALTIME_KINDS = ("realtime",)
SYNC_KINDS = ("sync",)
FILE_KINDS = ("file",)
API_NAMES = {INFERENCE_KINDS: "recognition protocol", REALTIME_KINDS: "realtime protocol",
             SYNC_KINDS: "sync recognition API", FILE_KINDS: "file transcription API"}


def resolve_profile(settings: Settings, name: Any, kinds: tuple[str, ...] | None = None,
                    *, field: str = "model") -> Profile:
    """The profile a request names (a name or an alias), served by an API of `kinds` (None: any)."""
    if not isinstance(name, str) or not name:
        raise ServiceError(INVALID_PARAMETER, f"{field} is required", param=field)
    profile = settings.profile(name)
    if profile is None:
        raise ServiceError(MODEL_NOT_FOUND, f"Model not found: {name}", param=field)
    if kinds is not None and profile.kind not in kinds:
        raise ServiceError(MODEL_NOT_FOUND,
                           f"model {name} is not served by the {API_NAMES.get(kinds, 'this API')}",
                           param=field)
    return profile
