"""The per-task audio cap (`max_task_audio_s`) that both recognition WebSockets enforce alike."""

from __future__ import annotations

from voxscope.config import Settings
from voxscope.protocols import errors

# Same code on both sockets: the client sent more audio than one task may carry.
TASK_AUDIO_CODE = errors.INVALID_PARAMETER


def task_audio_excess(seconds: float, settings: Settings) -> str | None:
    """The error message when a task has received more than `max_task_audio_s` of audio."""
    cap = settings.max_task_audio_s
    if seconds > cap:
        return f"task exceeds the maximum of {cap:.0f} s of audio"
    return None
