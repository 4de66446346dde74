"""Raw PCM and PCM WAV streams, decoded with numpy (no container library needed).

WAV is parsed here rather than with FFmpeg's demuxer because the header is tiny,
must be validated strictly (PCM only, mono, the declared rate) and may arrive
split across frames at any byte; numpy converts the samples directly.
"""

from __future__ import annotations

import struct

import numpy as np

from .errors import AudioFormatError
from .resample import EMPTY, MonoResampler, concat

# The one sample rate (Hz) every decoder produces and everything outside engine/ counts audio in.
TARGET_RATE = 16000

# WAVE format tags, for naming what a rejected file contains.
_WAVE_TAG_NAMES: dict[int, str] = {
    0x0001: "PCM",
    0x0002: "Microsoft ADPCM",
    0x0003: "IEEE float",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG audio",
    0x0055: "MP3",
    0x00FF: "AAC",
    0x1610: "AAC (ADTS)",
    0x566F: "Vorbis",
    0xF1AC: "FLAC",
}
_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_FLOAT = 0x0003
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# A fmt chunk is 16..40 bytes; anything huge is not a WAV header.
_MAX_FMT_CHUNK = 1024
# Metadata chunks (LIST, fact, bext, ...) are a few KiB; a stream cannot say how much follows,
# so a larger claimed size is taken as a broken header rather than swallowing the audio after it.
_MAX_SKIP_CHUNK = 1 << 20


def rate_mismatch(declared: int, actual: int, where: str) -> AudioFormatError:
    return AudioFormatError(
        f"declared sample_rate {declared} Hz does not match the audio's actual sample rate "
        f"{actual} Hz ({where})"
    )


def not_mono(channels: int, where: str) -> AudioFormatError:
    return AudioFormatError(f"only mono audio is supported; the {where} has {channels} channels")


class SampleStage:
    """Interleaved mono PCM bytes -> float32 at the target rate.

    Keeps the bytes of an incomplete sample between calls, so frames may be cut at
    any byte (odd byte counts for 16-bit audio).
    """

    def __init__(self, sample_format: str, rate: int, target_rate: int) -> None:
        self._format = sample_format  # "u8", "s16", "s24", "s32", "f32" or "f64"
        self._width = {"u8": 1, "s16": 2, "s24": 3, "s32": 4, "f32": 4, "f64": 8}[sample_format]
        self.rate = rate
        self._carry = b""
        self._resampler = MonoResampler(target_rate)

    def feed(self, data: bytes) -> np.ndarray:
        if self._carry:
            data = self._carry + data
        usable = len(data) - len(data) % self._width
        self._carry = data[usable:]
        if usable == 0:
            return EMPTY.copy()
        return self._resampler.samples(self._to_float(memoryview(data)[:usable]), self.rate)

    def flush(self) -> np.ndarray:
        # A dangling partial sample at the very end is dropped: it is not audio.
        self._carry = b""
        return self._resampler.flush()

    def _to_float(self, buf: memoryview) -> np.ndarray:
        fmt = self._format
        if fmt == "s16":
            return np.frombuffer(buf, dtype="<i2").astype(np.float32) / 32768.0
        if fmt == "u8":
            return (np.frombuffer(buf, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
        if fmt == "s24":
            b = np.frombuffer(buf, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            v = np.where(v >= 1 << 23, v - (1 << 24), v)
            return v.astype(np.float32) / float(1 << 23)
        if fmt == "s32":
            return (np.frombuffer(buf, dtype="<i4").astype(np.float64) / 2147483648.0).astype(
                np.float32
            )
        if fmt == "f32":
            return np.frombuffer(buf, dtype="<f4").astype(np.float32)
        return np.frombuffer(buf, dtype="<f8").astype(np.float32)


class PcmBackend:
    """Declared ``pcm``: raw signed 16-bit little-endian mono at the declared rate."""

    def __init__(self, rate: int, target_rate: int) -> None:
        self._stage = SampleStage("s16", rate, target_rate)
        self.input_rate: int | None = rate

    def feed(self, data: bytes) -> np.ndarray:
        return self._stage.feed(data)

    def flush(self) -> np.ndarray:
        return self._stage.flush()

    def close(self, wait: bool = True) -> None:
        pass


class WavBackend:
    """A RIFF/WAVE stream parsed incrementally: header chunks, then PCM samples.

    Rejects non-PCM codecs, non-mono audio and a header rate that differs from the
    declared one. The ``data`` chunk size is honoured unless it is 0 or 0xFFFFFFFF,
    which streaming writers use for "unknown length". A header chunk over 1 MiB, or a
    stream that ends before its ``data`` chunk, is an error: otherwise the audio would
    silently vanish into a chunk that claims more bytes than follow.
    """

    def __init__(self, declared_rate: int, target_rate: int, max_buffer_bytes: int) -> None:
        self._declared_rate = declared_rate
        self._target_rate = target_rate
        self._max_buffer = max_buffer_bytes
        self._buf = bytearray()  # header bytes not parsed yet
        self._state = "riff"  # riff -> chunk -> (fmt | skip | data) ... -> tail
        self._need = 12  # bytes the current header state waits for
        self._skip = 0  # bytes of an uninteresting chunk still to discard
        self._data_left: int | None = None  # bytes left in the data chunk; None = unbounded
        self._stage: SampleStage | None = None
        self.input_rate: int | None = None

    def feed(self, data: bytes) -> np.ndarray:
        out: list[np.ndarray] = []
        view = memoryview(data)
        while view.nbytes:
            if self._state == "data":
                view = self._feed_samples(view, out)
            elif self._state == "tail":
                break  # bytes after the data chunk (e.g. a LIST chunk) are not audio
            elif self._state == "skip":
                n = min(self._skip, view.nbytes)
                self._skip -= n
                view = view[n:]
                if self._skip == 0:
                    self._state, self._need = "chunk", 8
            else:
                n = min(self._need - len(self._buf), view.nbytes)
                self._buf += view[:n]
                view = view[n:]
                if len(self._buf) == self._need:
                    self._parse_header(bytes(self._buf))
                    self._buf.clear()
        return concat([o for o in out if o.size])

    def flush(self) -> np.ndarray:
        if self._stage is None:
            if self._state == "riff" and not self._buf:
                return EMPTY.copy()
            raise AudioFormatError("the WAV data ended before its header was complete")
        if self._state in ("skip", "chunk", "fmt") and self._data_left is None:
            # No data chunk was ever reached: the audio (if any) went into a header chunk.
            raise AudioFormatError("the WAV data ended before its data chunk: a header chunk "
                                   "claims more bytes than the stream holds")
        return self._stage.flush()

    def close(self, wait: bool = True) -> None:
        pass

    def _feed_samples(self, view: memoryview, out: list[np.ndarray]) -> memoryview:
        assert self._stage is not None
        n = view.nbytes if self._data_left is None else min(self._data_left, view.nbytes)
        out.append(self._stage.feed(bytes(view[:n])))
        if self._data_left is not None:
            self._data_left -= n
            if self._data_left == 0:
                self._state = "tail"
        return view[n:]

    def _parse_header(self, b: bytes) -> None:
        if self._state == "riff":
            if b[:4] != b"RIFF" or b[8:12] != b"WAVE":
                raise AudioFormatError("format 'wav' requires a RIFF/WAVE file")
            self._state, self._need = "chunk", 8
        elif self._state == "chunk":
            chunk_id, size = b[:4], struct.unpack_from("<I", b, 4)[0]
            if chunk_id == b"fmt ":
                if not 16 <= size <= _MAX_FMT_CHUNK:
                    raise AudioFormatError(f"invalid WAV header: fmt chunk of {size} bytes")
                self._state, self._need = "fmt", size + (size & 1)
            elif chunk_id == b"data":
                if self._stage is None:
                    raise AudioFormatError("invalid WAV header: data chunk before the fmt chunk")
                self._state = "data"
                self._data_left = None if size in (0, 0xFFFFFFFF) else size
            else:
                # LIST, fact, ... : discard without holding the bytes. Chunks are
                # word-aligned, hence the pad byte after odd sizes.
                self._skip = size + (size & 1)
                limit = min(self._max_buffer, _MAX_SKIP_CHUNK)
                if self._skip > limit:
                    name = chunk_id.decode("latin-1")
                    raise AudioFormatError(
                        f"invalid WAV header: its {name!r} chunk claims {size} bytes, more than "
                        f"a header chunk may hold ({limit} bytes); the audio would be lost in it"
                    )
                self._state = "skip" if self._skip else "chunk"
                self._need = 8
        elif self._state == "fmt":
            self._stage = self._parse_fmt(b)
            self._state, self._need = "chunk", 8

    def _parse_fmt(self, b: bytes) -> SampleStage:
        tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", b)
        if tag == _WAVE_FORMAT_EXTENSIBLE and len(b) >= 26:
            # WAVE_FORMAT_EXTENSIBLE: the real tag is the first 2 bytes of the subformat GUID.
            tag = struct.unpack_from("<H", b, 24)[0]
        if tag not in (_WAVE_FORMAT_PCM, _WAVE_FORMAT_FLOAT):
            name = _WAVE_TAG_NAMES.get(tag, "an unsupported codec")
            raise AudioFormatError(
                f"WAV audio must be PCM-encoded; this file contains {name} (format tag 0x{tag:04x})"
            )
        if channels != 1:
            raise not_mono(channels, "WAV header")
        if rate != self._declared_rate:
            raise rate_mismatch(self._declared_rate, rate, "WAV header")
        sample_format = {
            (_WAVE_FORMAT_PCM, 8): "u8",
            (_WAVE_FORMAT_PCM, 16): "s16",
            (_WAVE_FORMAT_PCM, 24): "s24",
            (_WAVE_FORMAT_PCM, 32): "s32",
            (_WAVE_FORMAT_FLOAT, 32): "f32",
            (_WAVE_FORMAT_FLOAT, 64): "f64",
        }.get((tag, bits))
        if sample_format is None or block_align != bits // 8:
            raise AudioFormatError(
                f"unsupported WAV sample format: {bits}-bit "
                f"{'float' if tag == _WAVE_FORMAT_FLOAT else 'integer'} PCM "
                f"(block align {block_align})"
            )
        self.input_rate = rate
        return SampleStage(sample_format, rate, self._target_rate)
