"""Whole-file recognition for the sync APIs (DashScope multimodal and OpenAI audio): scratch
folders, capped decoding, and turning sentences into one text."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from voxscope.audio.file_decoder import TARGET_RATE, iter_file_chunks
from voxscope.config import Profile, Settings
from voxscope.engine.offline import Sentence
from voxscope.engine.text import is_cjk
from voxscope.errors import BAD_AUDIO, ServiceError
from voxscope.service.runtime import Runtime

AUDIO_TOO_LONG = "InvalidParameter.AudioTooLong"
CHUNK_S = 30.0  # audio handed to the offline transcriber per step


def work_dir(settings: Settings) -> Path:
    """A new private scratch folder for one request (the caller removes it)."""
    root = settings.data_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="sync-", dir=root))


def decode_capped(path: Path | Any, max_seconds: float | None) -> np.ndarray:
    """Decode a file to 16 kHz mono float32, refusing it as soon as it runs past max_seconds."""
    chunks: list[np.ndarray] = []
    total = 0
    limit = None if max_seconds is None else int(max_seconds * TARGET_RATE)
    for chunk in iter_file_chunks(path, CHUNK_S):
        total += chunk.size
        if limit is not None and total > limit:
            raise ServiceError(AUDIO_TOO_LONG,
                               f"the audio is longer than the {max_seconds:g} s limit of this model")
        chunks.append(chunk)
    if not total:
        raise ServiceError(BAD_AUDIO, "the file holds no audio")
    return np.concatenate(chunks)


def slices(audio: np.ndarray, seconds: float = CHUNK_S) -> Iterator[np.ndarray]:
    step = int(seconds * TARGET_RATE)
    for i in range(0, audio.size, step):
        yield audio[i: i + step]


def joined(sentences: list[Sentence]) -> str:
    """Sentences as one text: CJK sentences back to back, others separated by a space."""
    text = ""
    for s in sentences:
        text += separator(text, s) + s.text
    return text


def separator(before: str, s: Sentence) -> str:
    return "" if not before or is_cjk(s.language) else " "


def main_language(sentences: list[Sentence], fallback: str | None) -> str:
    weights: Counter[str] = Counter()
    for s in sentences:
        if s.language:
            weights[s.language] += len(s.text)
    if weights:
        return weights.most_common(1)[0][0]
    return fallback or "unknown"


def count_tokens(rt: Runtime, profile: Profile, text: str, language: str | None) -> int:
    return len(rt.engine.tokenize(profile, text, language))
