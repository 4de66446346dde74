"""Subtitle documents (SRT, WebVTT) from timed sentences: the one formatter of the CLI and the
OpenAI-compatible endpoint (the web console's live view has its JS twin in web/static/formats.js)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Timed(Protocol):
    """A sentence with times in seconds (engine.offline.Sentence has this shape)."""

    begin: float
    end: float
    text: str


def timestamp(seconds: float, sep: str) -> str:
    """HH:MM:SS<sep>mmm; sep is ',' for SRT and '.' for WebVTT."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def srt(sentences: Iterable[Timed]) -> str:
    return "".join(f"{i}\n{timestamp(s.begin, ',')} --> {timestamp(s.end, ',')}\n{s.text.strip()}\n\n"
                   for i, s in enumerate(sentences, 1))


def vtt(sentences: Iterable[Timed]) -> str:
    return "WEBVTT\n\n" + "".join(
        f"{timestamp(s.begin, '.')} --> {timestamp(s.end, '.')}\n{s.text.strip()}\n\n" for s in sentences)
