"""StreamDecoder: every declared format, fed the way a WebSocket client sends it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.audio.media import (
    envelope_similarity,
    pcm16,
    speech,
    speech_as,
    waveform_similarity,
)
from voxscope.audio import SUPPORTED_FORMATS, StreamDecoder

pytestmark = pytest.mark.timeout(60)

FRAME = 3200  # bytes per WebSocket frame, as DashScope's SDK sends 100 ms of 16 kHz pcm

# (declared format, rate) pairs: 8, 16 and 48 kHz wherever the codec supports them.
MATRIX = [
    ("pcm", 8000), ("pcm", 16000), ("pcm", 48000),
    ("wav", 8000), ("wav", 16000), ("wav", 48000),
    ("mp3", 8000), ("mp3", 16000), ("mp3", 48000),
    ("opus", 8000), ("opus", 16000), ("opus", 48000),
    ("aac", 8000), ("aac", 16000), ("aac", 48000),
    ("amr", 8000),
    ("speex", 8000), ("speex", 16000),
]  # fmt: skip
# Codecs that keep the waveform (not just the spectrum/energy) well enough to correlate.
WAVEFORM_CODECS = {"pcm", "wav", "mp3", "opus", "aac"}
# Opus always decodes at 48 kHz, whatever rate it was encoded from.
DECODE_RATE = {"opus": 48000}


def decode(fmt: str, rate: int, data: bytes, sizes: list[int] | None = None) -> np.ndarray:
    """Feed ``data`` in pieces (FRAME bytes, or the given sizes) and flush."""
    out = []
    with StreamDecoder(fmt, rate) as dec:
        pos = 0
        for size in sizes or []:
            out.append(dec.feed(data[pos : pos + size]))
            pos += size
        for i in range(pos, len(data), FRAME):
            out.append(dec.feed(data[i : i + FRAME]))
        out.append(dec.flush())
    for piece in out:
        assert piece.dtype == np.float32 and piece.ndim == 1
    return np.concatenate(out)


def test_supported_formats() -> None:
    assert SUPPORTED_FORMATS == ("pcm", "wav", "mp3", "opus", "speex", "aac", "amr")


@pytest.mark.parametrize(("fmt", "rate"), MATRIX)
def test_decodes_to_16k_mono(fmt: str, rate: int) -> None:
    ref = speech(16000)
    data = speech_as(fmt, rate)
    with StreamDecoder(fmt, rate) as dec:
        parts = [dec.feed(data[i : i + FRAME]) for i in range(0, len(data), FRAME)]
        parts.append(dec.flush())
        assert dec.input_rate == DECODE_RATE.get(fmt, rate)
    y = np.concatenate(parts)
    assert y.dtype == np.float32 and y.ndim == 1
    assert np.abs(y).max() <= 1.0
    # Length: the clip's duration within 50 ms (codec priming and padding removed).
    assert abs(len(y) - len(ref)) <= 0.050 * 16000, (len(y), len(ref))
    # Content: not silence, not noise -- it follows the original speech.
    assert 0.5 < np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(ref**2)) < 2.0
    assert envelope_similarity(ref, y) > 0.9
    if fmt in WAVEFORM_CODECS:
        # 8 kHz input has no energy above 4 kHz, hence a lower bar.
        assert waveform_similarity(ref, y) > (0.85 if rate == 8000 else 0.95)


@pytest.mark.parametrize(
    ("fmt", "rate"),
    [("pcm", 16000), ("wav", 16000), ("mp3", 16000), ("opus", 48000), ("aac", 16000),
     ("amr", 8000), ("speex", 16000)],
)  # fmt: skip
def test_audio_comes_out_while_streaming(fmt: str, rate: int) -> None:
    data = speech_as(fmt, rate)
    half = len(data) // 2
    with StreamDecoder(fmt, rate) as dec:
        got = []
        for i in range(0, half, FRAME):
            got.append(dec.feed(data[i : min(i + FRAME, half)]).size)
        # Audio comes out piece by piece (not all at once at some point)...
        assert sum(1 for n in got if n) >= min(3, len(got)), got
        # ...and half the bytes of a 10 s clip give at least ~3 s of audio.
        assert sum(got) >= 3.0 * 16000, sum(got) / 16000


@pytest.mark.parametrize(
    ("fmt", "rate"),
    [("pcm", 16000), ("pcm", 48000), ("wav", 8000), ("mp3", 16000), ("opus", 16000),
     ("aac", 48000), ("amr", 8000), ("speex", 8000)],
)  # fmt: skip
def test_arbitrary_frame_boundaries(fmt: str, rate: int) -> None:
    """Frames cut anywhere (mid-header, mid-page, mid-packet, odd bytes) decode the same."""
    data = speech_as(fmt, rate)
    whole = decode(fmt, rate, data, sizes=[len(data)])
    rng = np.random.default_rng(7)
    # Byte by byte through every header, then random sizes, odd ones included.
    sizes = [1] * 120
    while sum(sizes) < len(data):
        sizes.append(int(rng.integers(1, 4000)))
    pieces = decode(fmt, rate, data, sizes=sizes)
    assert len(pieces) == len(whole)
    np.testing.assert_allclose(pieces, whole, atol=1e-5)


def test_pcm_odd_byte_counts_are_exact() -> None:
    x = speech(16000)
    data = pcm16(x)
    y = decode("pcm", 16000, data, sizes=[3] * (len(data) // 3))
    expected = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    np.testing.assert_array_equal(y, expected)


def test_flush_without_data_is_empty() -> None:
    for fmt in SUPPORTED_FORMATS:
        with StreamDecoder(fmt, 8000) as dec:
            assert dec.feed(b"").size == 0
            assert dec.flush().size == 0
            assert dec.flush().size == 0  # flush twice: still nothing


def test_feed_returns_empty_until_a_frame_is_complete() -> None:
    data = speech_as("mp3", 16000)
    with StreamDecoder("mp3", 16000) as dec:
        assert dec.feed(data[:5]).size == 0
        assert dec.input_rate is None
        assert dec.feed(data[5:20000]).size > 0
        assert dec.input_rate == 16000
