"""decode_file / iter_file_chunks / probe_duration on real files."""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tests.audio.media import (
    OPUS_CLIP,
    SPEECH_CLIP,
    STEREO_CLIP,
    clip_path,
    envelope_similarity,
    pcm16,
    reference_decode,
    speech,
    speech_as,
    waveform_similarity,
)
from voxscope.audio import AudioFormatError, decode_file, iter_file_chunks
from voxscope.audio.file_decoder import probe_duration

pytestmark = pytest.mark.timeout(60)


def test_wav_file_is_decoded_exactly() -> None:
    path = clip_path(SPEECH_CLIP)  # 16 kHz s16 mono: no resampling, exact samples
    y = decode_file(path)
    raw = path.read_bytes()
    start = raw.index(b"data") + 8
    data = raw[start : start + struct.unpack_from("<I", raw, start - 4)[0]]
    assert y.dtype == np.float32 and y.ndim == 1
    np.testing.assert_array_equal(y, np.frombuffer(data, "<i2").astype(np.float32) / 32768)


def test_8k_wav_resampled_and_native() -> None:
    path = clip_path("en_osr_us_000_0034_8k.wav")
    y16 = decode_file(str(path))
    y8 = decode_file(path, target_rate=8000)
    assert abs(len(y16) - 2 * len(y8)) <= 2
    assert abs(len(y8) / 8000 - 35.547875) < 0.001


def test_stereo_flac_is_mixed_to_mono() -> None:
    path = clip_path(STEREO_CLIP)
    y = decode_file(path)
    assert y.ndim == 1 and abs(len(y) / 16000 - 11.0) < 0.05
    assert np.abs(y).max() <= 1.0
    # Same speech as either channel on its own.
    left = reference_decode(path, 16000, mono=False)[0]
    assert waveform_similarity(left, y) > 0.9


def test_ogg_opus_file() -> None:
    path = clip_path(OPUS_CLIP)
    y = decode_file(path)
    assert abs(len(y) / 16000 - 10.5665) < 0.05
    assert waveform_similarity(reference_decode(path, 16000)[0], y) > 0.99


@pytest.mark.parametrize(("fmt", "rate"), [("mp3", 48000), ("aac", 16000), ("amr", 8000)])
def test_file_objects(fmt: str, rate: int) -> None:
    y = decode_file(io.BytesIO(speech_as(fmt, rate)))
    assert abs(len(y) - len(speech(16000))) < 0.15 * 16000
    assert envelope_similarity(speech(16000), y) > 0.9


def test_iter_file_chunks_matches_decode_file() -> None:
    path = clip_path(STEREO_CLIP)
    chunks = list(iter_file_chunks(path, chunk_seconds=3.0))
    assert [len(c) for c in chunks[:-1]] == [48000] * (len(chunks) - 1)
    assert 0 < len(chunks[-1]) <= 48000
    np.testing.assert_array_equal(np.concatenate(chunks), decode_file(path))


def write_long_wav(path: Path, seconds: int) -> None:
    """A long 16 kHz mono WAV made by repeating the speech clip."""
    clip = pcm16(speech(16000))
    reps = -(-seconds * 16000 * 2 // len(clip))
    data = (clip * reps)[: seconds * 16000 * 2]
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    path.write_bytes(header + b"data" + struct.pack("<I", len(data)) + data)


def test_long_file_is_streamed_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    write_long_wav(path, seconds=600)  # 10 min: 38 MB as float32 if loaded whole
    assert probe_duration(path) == pytest.approx(600.0)
    tracemalloc.start()
    try:
        total = 0
        for chunk in iter_file_chunks(path, chunk_seconds=30.0):
            assert len(chunk) <= 30 * 16000
            total += len(chunk)
            del chunk
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 600 * 16000
    assert peak < 12 * 1024 * 1024, peak  # a few 30 s chunks (1.9 MB each), not 38 MB


def test_probe_duration(tmp_path: Path) -> None:
    assert probe_duration(clip_path(SPEECH_CLIP)) == pytest.approx(9.963375, abs=0.01)
    assert probe_duration(clip_path(STEREO_CLIP)) == pytest.approx(11.0, abs=0.01)
    assert probe_duration(clip_path(OPUS_CLIP)) == pytest.approx(10.5665, abs=0.01)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 64)
    assert probe_duration(garbage) is None
    assert probe_duration(tmp_path / "missing.wav") is None


def test_bad_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(np.random.default_rng(1).integers(0, 256, 50000, np.uint8).tobytes())
    with pytest.raises(AudioFormatError):
        decode_file(garbage)
    text = tmp_path / "notes.txt"
    text.write_text("not audio\n" * 100)
    with pytest.raises(AudioFormatError):
        decode_file(text)
    with pytest.raises(AudioFormatError):
        list(iter_file_chunks(text))
    with pytest.raises(FileNotFoundError):
        decode_file(tmp_path / "missing.wav")
    with pytest.raises(ValueError):
        list(iter_file_chunks(clip_path(SPEECH_CLIP), chunk_seconds=0))
