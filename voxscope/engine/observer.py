"""The timings the engine reports while it works; the service layer records them as metrics.

The engine knows nothing of Prometheus: it calls an `EngineObserver` (no-op by default) that the
composition root replaces. Labels are bounded: `model` is a configured model or profile name.
"""

from __future__ import annotations


class EngineObserver:
    """Receives engine timings; every method must be cheap and must not raise."""

    def decoded(self, model: str, audio_s: float, decode_s: float,
                waits: list[tuple[str, float]]) -> None:
        """A decode batch of `audio_s` seconds of audio took `decode_s`; `waits` holds each
        request's (priority name, seconds queued before its batch started)."""

    def timing(self, model: str, kind: str, seconds: float) -> None:
        """A streaming result went out: kind "first_partial" (seconds since speech onset was
        detected) or "final" (seconds since the last speech of the sentence arrived); kind
        "final_recheck" (seconds 0) counts a short-window final decoded again in the full window;
        "early_recheck_used" / "early_recheck_dropped" (0) one asked for beside it at the close."""
