"""StreamDecoder container details: WAV variants, pcm with a WAV header, MP4/M4A."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from tests.audio.media import m4a, pcm16, speech, wav_bytes, waveform_similarity
from voxscope.audio import StreamDecoder

pytestmark = pytest.mark.timeout(30)

FRAME = 3200


def feed_all(dec: StreamDecoder, data: bytes, frame: int = FRAME) -> list[np.ndarray]:
    parts = [dec.feed(data[i : i + frame]) for i in range(0, len(data), frame)]
    parts.append(dec.flush())
    return parts


def s16(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def riff(chunks: list[tuple[bytes, bytes]], data_size: int | None = None) -> bytes:
    """Build a RIFF/WAVE file from (id, body) chunks; data_size overrides the data size."""
    body = b"WAVE"
    for cid, payload in chunks:
        size = data_size if (cid == b"data" and data_size is not None) else len(payload)
        body += cid + struct.pack("<I", size) + payload + (b"\0" if len(payload) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt_chunk(rate: int, tag: int = 1, bits: int = 16, channels: int = 1) -> tuple[bytes, bytes]:
    align = channels * bits // 8
    return b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def test_pcm_with_wav_header_is_decoded_as_wav() -> None:
    x = speech(16000)
    wav = wav_bytes(x, 16000)
    with StreamDecoder("pcm", 16000) as dec:
        y = np.concatenate(feed_all(dec, wav))
    # Exactly the samples, without the header bytes played as audio.
    np.testing.assert_array_equal(y, s16(pcm16(x)))


def test_pcm_that_merely_starts_like_riff_is_still_pcm() -> None:
    data = b"RIF" + bytes(997)
    with StreamDecoder("pcm", 16000) as dec:
        y = np.concatenate(feed_all(dec, data, frame=3))
    np.testing.assert_array_equal(y, s16(data))


def test_tiny_pcm_stream() -> None:
    with StreamDecoder("pcm", 16000) as dec:
        assert dec.feed(b"\x00\x40\x00").size == 0  # < 12 bytes: still deciding
        y = dec.flush()
    np.testing.assert_array_equal(y, np.array([0.5], dtype=np.float32))


def test_wav_extra_chunks_and_streaming_size() -> None:
    samples = pcm16(speech(16000)[:16000])
    list_chunk = (b"LIST", b"INFOISFT\x05\x00\x00\x00test\x00")
    odd_chunk = (b"junk", b"abc")  # odd size: followed by a pad byte
    trailer = (b"id3 ", b"not audio at all" * 10)
    wav = riff([odd_chunk, fmt_chunk(16000), list_chunk, (b"data", samples), trailer])
    with StreamDecoder("wav", 16000) as dec:
        y = np.concatenate(feed_all(dec, wav, frame=7))
    np.testing.assert_array_equal(y, s16(samples))  # the trailer is not decoded
    # Streaming writers leave the data size at 0 or 0xFFFFFFFF: read to the end.
    for size in (0, 0xFFFFFFFF):
        wav = riff([fmt_chunk(16000), (b"data", samples)], data_size=size)
        with StreamDecoder("wav", 16000) as dec:
            y = np.concatenate(feed_all(dec, wav))
        np.testing.assert_array_equal(y, s16(samples))


@pytest.mark.parametrize("codec", ["pcm_u8", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le"])
def test_wav_sample_formats(codec: str) -> None:
    x = speech(16000)
    with StreamDecoder("wav", 16000) as dec:
        y = np.concatenate(feed_all(dec, wav_bytes(x, 16000, codec=codec), frame=1001))
    assert len(y) == len(x)
    tolerance = 1.0 / 100 if codec == "pcm_u8" else 1e-4
    np.testing.assert_allclose(y, x, atol=tolerance)


def test_wav_extensible_pcm() -> None:
    samples = pcm16(speech(8000)[:8000])
    ext = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 8000, 16000, 2, 16, 22, 16, 4)
    ext += struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    wav = riff([(b"fmt ", ext), (b"data", samples)])
    with StreamDecoder("wav", 8000) as dec:
        y = np.concatenate(feed_all(dec, wav))
    assert len(y) == 16000  # 1 s resampled to 16 kHz


@pytest.mark.parametrize("faststart", [True, False])
def test_aac_in_mp4(faststart: bool) -> None:
    ref = speech(16000)
    data = m4a(faststart)
    half = len(data) // 2
    with StreamDecoder("aac", 16000) as dec:
        early = sum(dec.feed(data[i : min(i + FRAME, half)]).size for i in range(0, half, FRAME))
        rest = [dec.feed(data[i : i + FRAME]) for i in range(half, len(data), FRAME)]
        y_rest = np.concatenate([*rest, dec.flush()])
    if faststart:
        # moov first: decoded as it arrives.
        assert early >= 3 * 16000
    else:
        # moov last: nothing can be decoded before the end of the file.
        assert early == 0
    assert abs(early + len(y_rest) - len(ref)) <= 0.05 * 16000
    if not faststart:
        assert waveform_similarity(ref, y_rest) > 0.95
