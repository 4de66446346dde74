"""Decoding whole audio files (any format FFmpeg reads) to float32 mono PCM."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import av
import av.error
import numpy as np

from .demux import tolerant_frames
from .errors import AudioFormatError
from .pcm import TARGET_RATE
from .resample import MonoResampler, concat

# Damaged packets are skipped (long real-world recordings often have a few); a run
# this long means the file is not decodable audio.
_MAX_CONSECUTIVE_DECODE_ERRORS = 32

Source = str | os.PathLike[str] | BinaryIO


def _open(source: Source) -> av.container.InputContainer:
    try:
        return av.open(source, metadata_errors="ignore")
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise  # a server-side problem, not bad audio
    except av.error.FFmpegError as e:
        raise AudioFormatError(
            f"the file is not a readable audio file: {e.strerror or e}"
        ) from None


def _iter_decoded(source: Source, target_rate: int,
                  channel: int | None = None) -> Iterator[np.ndarray]:
    """Yield float32 mono blocks at ``target_rate`` in order, one per decoded frame.

    ``channel`` picks one track of a multi-channel file; None mixes all tracks down.
    """
    container = _open(source)
    try:
        if not container.streams.audio:
            raise AudioFormatError("the file has no audio stream")
        stream = container.streams.audio[0]
        if stream.codec_context is None:
            raise AudioFormatError("the file's audio codec is not supported")
        channels = stream.codec_context.channels or 1
        if channel is not None and not 0 <= channel < channels:
            raise AudioFormatError(f"channel {channel} does not exist: the file has {channels} "
                                   f"channel{'s' if channels != 1 else ''}")
        picker = _ChannelPicker(channel) if channel is not None and channels > 1 else None
        # Raw ADTS cannot signal the AAC encoder's priming frame (MP4 can, and FFmpeg
        # applies it): drop it as the stream decoder does (see container.py).
        drop_first = container.format.name == "aac" and stream.codec_context.name in (
            "aac",
            "aac_fixed",
        )
        resampler: MonoResampler | None = None
        setup: tuple[str, str, int] | None = None
        frames = tolerant_frames(
            container, stream, _MAX_CONSECUTIVE_DECODE_ERRORS,
            on_corrupt=lambda _, last: AudioFormatError(f"the file's audio is corrupt ({last})"),
            on_nothing=lambda last: AudioFormatError(
                f"no audio could be decoded from the file ({last})"),
        )
        for frame in frames:
            if drop_first:
                drop_first = False
                continue
            # A resampler is tied to one input layout/rate; some files change
            # them mid-stream, so start a new one (after draining the old).
            key = (frame.format.name, frame.layout.name, frame.sample_rate)
            if key != setup:
                if resampler is not None:
                    tail = resampler.flush()
                    if tail.size:
                        yield tail
                resampler, setup = MonoResampler(target_rate), key
            assert resampler is not None
            out = (resampler.samples(picker.pick(frame), frame.sample_rate) if picker is not None
                   else resampler.frame(frame))
            if out.size:
                yield out
        if resampler is not None:
            tail = resampler.flush()
            if tail.size:
                yield tail
    except av.error.FFmpegError as e:
        # Demuxing errors (truncated or damaged container).
        raise AudioFormatError(f"the file could not be decoded: {e.strerror or e}") from None
    finally:
        container.close()


class _ChannelPicker:
    """One channel of multi-channel frames as float32 samples at the frame's own rate."""

    def __init__(self, channel: int) -> None:
        self.channel = channel
        self._planar: av.AudioResampler | None = None
        self._setup: tuple[str, int] | None = None

    def pick(self, frame: av.AudioFrame) -> np.ndarray:
        key = (frame.layout.name, frame.sample_rate)
        if key != self._setup:
            self._planar = av.AudioResampler(format="fltp", layout=frame.layout.name,
                                             rate=frame.sample_rate)
            self._setup = key
        assert self._planar is not None
        rows = [f.to_ndarray()[self.channel] for f in self._planar.resample(frame) if f is not None]
        return concat([np.asarray(r, dtype=np.float32) for r in rows])


def decode_file(path_or_fileobj: Source, target_rate: int = TARGET_RATE) -> np.ndarray:
    """Decode a whole file (any format PyAV reads) to float32 mono at ``target_rate``.

    Multi-channel audio is mixed down to mono.
    """
    return concat(list(_iter_decoded(path_or_fileobj, target_rate)))


def iter_file_chunks(
    path: Source, chunk_seconds: float = 30.0, target_rate: int = TARGET_RATE,
    channel: int | None = None,
) -> Iterator[np.ndarray]:
    """Stream a (possibly hours-long) file as consecutive float32 mono chunks.

    Every chunk is exactly ``chunk_seconds`` long except the last; only about one
    chunk of samples is held in memory at a time.
    """
    size = round(chunk_seconds * target_rate)
    if size <= 0:
        raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds!r}")
    pending: list[np.ndarray] = []
    held = 0
    for block in _iter_decoded(path, target_rate, channel):
        pending.append(block)
        held += block.size
        if held < size:
            continue
        joined = np.concatenate(pending)
        start = 0
        while held - start >= size:
            yield joined[start : start + size]
            start += size
        rest = joined[start:].copy()  # copy so the yielded chunks' buffer can be freed
        pending, held = ([rest] if rest.size else []), rest.size
    if held:
        yield concat(pending)


def probe_duration(path: Source) -> float | None:
    """Duration in seconds from the container's header, or None when it is unknown."""
    try:
        container = av.open(path, metadata_errors="ignore")
    except (av.error.FFmpegError, OSError):
        return None
    try:
        if container.duration is not None and container.duration > 0:
            return container.duration / av.time_base
        for stream in container.streams.audio:
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
        return None
    finally:
        container.close()


@dataclass(frozen=True)
class AudioInfo:
    format: str  # container format as FFmpeg names it (wav, mp3, ogg, ...)
    codec: str  # the codec as FFmpeg names it, not its decoder (pcm_s16le, mp3, aac, opus, ...)
    sample_rate: int
    channels: int
    duration_s: float | None  # from the header; None when the container does not say


def probe_audio(path: Source) -> AudioInfo:
    """What the file is, from its header (no decoding); AudioFormatError if it is not audio."""
    container = _open(path)
    try:
        if not container.streams.audio:
            raise AudioFormatError("the file has no audio stream")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        if ctx is None:
            raise AudioFormatError("the file's audio codec is not supported")
        duration = None
        if container.duration is not None and container.duration > 0:
            duration = container.duration / av.time_base
        elif stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        return AudioInfo(container.format.name.split(",")[0], ctx.codec.canonical_name,
                         ctx.sample_rate or 0, ctx.channels or 1, duration)
    finally:
        container.close()
