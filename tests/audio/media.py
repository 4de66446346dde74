"""Test media: real speech clips re-encoded in memory with PyAV (and speexenc)."""

from __future__ import annotations

import functools
import io
import os
import shutil
import struct
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

AUDIO_DIR = Path(os.environ.get("VOXSCOPE_TEST_AUDIO", "/work/shared/audio"))
# ~10 s of English speech at 16 kHz mono.
SPEECH_CLIP = "en_beckett.wav"
STEREO_CLIP = "en_jfk_inaugural.flac"  # 44.1 kHz stereo, 11.0 s
OPUS_CLIP = "en_fleurs_000.ogg"  # Ogg/Opus 48 kHz mono, 10.5665 s


def clip_path(name: str) -> Path:
    path = AUDIO_DIR / name
    if not path.exists():
        pytest.skip(f"test clip {path} is not available")
    return path


def reference_decode(source: str | Path | io.BytesIO, rate: int, mono: bool = True) -> np.ndarray:
    """Plain PyAV decode + resample, independent of voxscope.audio: (channels, n) float32."""
    with av.open(str(source) if isinstance(source, Path) else source) as container:
        resampler = av.AudioResampler(format="fltp", layout="mono" if mono else None, rate=rate)
        parts = []
        for frame in container.decode(audio=0):
            parts += [f.to_ndarray() for f in resampler.resample(frame)]
        parts += [f.to_ndarray() for f in resampler.resample(None) if f is not None]
    return np.concatenate(parts, axis=1).astype(np.float32)


@functools.cache
def speech(rate: int) -> np.ndarray:
    """The speech clip as float32 mono at ``rate`` (read-only)."""
    x = reference_decode(clip_path(SPEECH_CLIP), rate)[0]
    x.setflags(write=False)
    return x


def encode(
    x: np.ndarray,
    rate: int,
    codec: str,
    container: str,
    layout: str = "mono",
    bit_rate: int | None = None,
    container_options: dict[str, str] | None = None,
    path: Path | None = None,
) -> bytes:
    """Encode float32 samples, shape (n,) or (channels, n), into ``container`` bytes."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    target: io.BytesIO | str = io.BytesIO() if path is None else str(path)
    with av.open(target, "w", format=container, options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        if bit_rate:
            stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(x.T).reshape(1, -1), format="flt", layout=layout
        )
        frame.sample_rate = rate
        frame.time_base = Fraction(1, rate)
        frame.pts = 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    if path is not None:
        return path.read_bytes()
    assert isinstance(target, io.BytesIO)
    return target.getvalue()


def pcm16(x: np.ndarray) -> bytes:
    return (np.clip(np.asarray(x), -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def wav_bytes(x: np.ndarray, rate: int, codec: str = "pcm_s16le", layout: str = "mono") -> bytes:
    return encode(x, rate, codec, "wav", layout=layout)


def speexenc_available() -> bool:
    return shutil.which("speexenc") is not None


def speex_encode(x: np.ndarray, rate: int, stereo: bool = False) -> bytes:
    """Ogg/Speex via the speex package's speexenc (FFmpeg has no speex encoder)."""
    if not speexenc_available():
        pytest.skip("speexenc not found on PATH (install the 'speex' package)")
    mode = {8000: "--narrowband", 16000: "--wideband", 32000: "--ultra-wideband"}[rate]
    cmd = ["speexenc", mode, "--rate", str(rate), "--le"]
    if stereo:
        cmd.append("--stereo")
    data = np.asarray(x, dtype=np.float32)
    raw = pcm16(data.T.reshape(-1) if stereo else data)
    result = subprocess.run([*cmd, "-", "-"], input=raw, capture_output=True, check=True)
    return result.stdout


ENCODERS: dict[str, tuple[str, str]] = {
    "mp3": ("libmp3lame", "mp3"),
    "opus": ("libopus", "ogg"),
    "aac": ("aac", "adts"),
    "amr": ("libopencore_amrnb", "amr"),
}


@functools.cache
def speech_as(fmt: str, rate: int) -> bytes:
    """The speech clip encoded as declared-format ``fmt`` at ``rate`` (cached)."""
    x = speech(rate)
    if fmt == "pcm":
        return pcm16(x)
    if fmt == "wav":
        return wav_bytes(x, rate)
    if fmt == "speex":
        return speex_encode(x, rate)
    codec, container = ENCODERS[fmt]
    # Realtime Ogg writers flush a page every packet or few; FFmpeg's default is one
    # page per second, which would hold each second back until its page is complete.
    options = {"page_duration": "100000"} if container == "ogg" else None
    return encode(
        x,
        rate,
        codec,
        container,
        bit_rate=12200 if fmt == "amr" else None,
        container_options=options,
    )


def stereo_speech(rate: int) -> np.ndarray:
    x = speech(rate)
    return np.stack([x, 0.5 * x[::-1]])


def set_wav_format_tag(wav: bytes, tag: int) -> bytes:
    """Patch a canonical WAV header's format tag (to fake a non-PCM codec)."""
    i = wav.index(b"fmt ") + 8
    return wav[:i] + struct.pack("<H", tag) + wav[i + 2 :]


def envelope(x: np.ndarray, hop: int = 320) -> np.ndarray:
    """RMS energy per 20 ms (at 16 kHz): survives codecs that do not keep the waveform."""
    n = len(x) // hop
    return np.sqrt((x[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(axis=1))


def envelope_similarity(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(envelope(a[:n]), envelope(b[:n]))[0, 1])


def waveform_similarity(ref: np.ndarray, y: np.ndarray, max_lag: int = 320) -> float:
    """Best normalised cross-correlation over lags up to ``max_lag`` samples (codec delay)."""
    n = min(len(ref), len(y))
    a = ref[:n].astype(np.float64)
    b = y[:n].astype(np.float64)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    corr = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    near = np.concatenate([corr[: max_lag + 1], corr[-max_lag:]])
    return float(near.max() / np.sqrt((a * a).sum() * (b * b).sum()))


@functools.cache
def m4a(faststart: bool) -> bytes:
    """AAC in MP4 at 16 kHz; ``faststart`` puts the moov index before the samples.

    The MP4 muxer needs a real (seekable, reopenable) file for faststart.
    """
    with tempfile.TemporaryDirectory() as tmp:
        options = {"movflags": "faststart"} if faststart else None
        return encode(
            speech(16000),
            16000,
            "aac",
            "mp4",
            container_options=options,
            path=Path(tmp) / "clip.m4a",
        )
