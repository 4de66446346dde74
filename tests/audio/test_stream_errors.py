"""StreamDecoder validation: every way a client's audio can be refused, with clear messages."""

from __future__ import annotations

import numpy as np
import pytest

from tests.audio.media import (
    encode,
    m4a,
    pcm16,
    set_wav_format_tag,
    speech,
    speech_as,
    speex_encode,
    stereo_speech,
    wav_bytes,
)
from voxscope.audio import AudioFormatError, StreamDecoder

pytestmark = pytest.mark.timeout(30)

FRAME = 3200


def random_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def run_stream(fmt: str, rate: int, data: bytes, **kwargs: int) -> np.ndarray:
    """Feed and flush; the decoder is closed whatever happens."""
    dec = StreamDecoder(fmt, rate, **kwargs)
    try:
        parts = [dec.feed(data[i : i + FRAME]) for i in range(0, len(data), FRAME)]
        parts.append(dec.flush())
        return np.concatenate(parts)
    finally:
        dec.close()


def expect_error(fmt: str, rate: int, data: bytes, *words: str, **kwargs: int) -> str:
    with pytest.raises(AudioFormatError) as info:
        run_stream(fmt, rate, data, **kwargs)
    err = info.value
    assert err.code == "InvalidParameter"
    assert err.message == str(err)
    for word in words:
        assert word.lower() in err.message.lower(), (word, err.message)
    return err.message


# --- declared parameters -------------------------------------------------------
@pytest.mark.parametrize("fmt", ["flac", "ogg", "m4a", "", "pcm16", "wave"])
def test_unsupported_format_name(fmt: str) -> None:
    with pytest.raises(AudioFormatError, match="unsupported audio format"):
        StreamDecoder(fmt, 16000)


def test_format_name_is_case_insensitive() -> None:
    with StreamDecoder(" MP3", 16000) as dec:
        assert dec.format == "mp3"


@pytest.mark.parametrize("rate", [0, 7999, 48001, 96000, -16000])
def test_sample_rate_out_of_range(rate: int) -> None:
    with pytest.raises(AudioFormatError, match="between 8000 and 48000"):
        StreamDecoder("pcm", rate)


def test_sample_rate_must_be_an_integer() -> None:
    with pytest.raises(AudioFormatError):
        StreamDecoder("pcm", "16000")  # type: ignore[arg-type]


def test_amr_must_be_8k() -> None:
    with pytest.raises(AudioFormatError, match="AMR-NB"):
        StreamDecoder("amr", 16000)


# --- wav ------------------------------------------------------------------------
def test_wav_with_non_pcm_codec() -> None:
    alaw = wav_bytes(speech(8000), 8000, codec="pcm_alaw")
    expect_error("wav", 8000, alaw, "PCM", "A-law")
    mp3_tag = set_wav_format_tag(wav_bytes(speech(8000), 8000), 0x0055)
    expect_error("wav", 8000, mp3_tag, "PCM", "MP3")


def test_wav_that_is_not_riff_wave() -> None:
    expect_error("wav", 16000, pcm16(speech(16000)), "wav")
    avi = bytearray(wav_bytes(speech(16000), 16000))
    avi[8:12] = b"AVI "
    expect_error("wav", 16000, bytes(avi), "wav", "not WAVE")


def test_wav_header_truncated() -> None:
    expect_error("wav", 16000, wav_bytes(speech(16000), 16000)[:30], "header")


# --- declared format contradicted by the data ----------------------------------
MISMATCHES = [
    # (declared, actual data, words the message must contain)
    ("mp3", "wav", ["'mp3'", "WAV"]),
    ("wav", "mp3", ["'wav'", "MP3"]),
    ("opus", "mp3", ["'opus'", "MP3", "Ogg"]),
    ("opus", "speex", ["'opus'", "Speex"]),
    ("speex", "opus", ["'speex'", "Opus"]),
    ("aac", "mp3", ["'aac'", "MP3"]),
    ("mp3", "aac", ["'mp3'", "ADTS"]),
    ("amr", "opus", ["'amr'", "Ogg/Opus"]),
    ("pcm", "opus", ["'pcm'", "Ogg/Opus"]),
    ("pcm", "mp3", ["'pcm'", "MP3"]),
    ("speex", "wav", ["'speex'", "WAV", "Ogg"]),
]


@pytest.mark.parametrize(("declared", "actual", "words"), MISMATCHES)
def test_declared_format_contradicted(declared: str, actual: str, words: list[str]) -> None:
    rate = 8000 if declared == "amr" else 16000
    data = speech_as(actual, 48000 if actual == "opus" else 16000)
    expect_error(declared, rate, data, *words)


def test_amr_wb_is_refused() -> None:
    expect_error("amr", 8000, b"#!AMR-WB\n" + random_bytes(2000), "AMR-NB", "AMR-WB")


# --- non-mono --------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["wav", "pcm", "mp3", "opus", "aac", "speex"])
def test_stereo_is_refused(fmt: str) -> None:
    rate = 48000 if fmt == "opus" else 16000
    x = stereo_speech(rate)
    if fmt in ("wav", "pcm"):  # declared pcm with a WAV header is checked as wav
        data = wav_bytes(x, rate, layout="stereo")
    elif fmt == "speex":
        data = speex_encode(x, rate, stereo=True)
    else:
        codec, container = {"mp3": ("libmp3lame", "mp3"), "opus": ("libopus", "ogg"),
                            "aac": ("aac", "adts")}[fmt]  # fmt: skip
        data = encode(x, rate, codec, container, layout="stereo")
    expect_error(fmt, rate, data, "only mono audio is supported", "2 channels")


# --- declared rate differs from the stream's ------------------------------------
@pytest.mark.parametrize(
    ("fmt", "actual", "declared"),
    [("wav", 8000, 16000), ("pcm", 8000, 16000), ("mp3", 8000, 16000), ("mp3", 48000, 16000),
     ("aac", 48000, 16000), ("speex", 8000, 16000)],
)  # fmt: skip
def test_sample_rate_mismatch(fmt: str, actual: int, declared: int) -> None:
    data = wav_bytes(speech(actual), actual) if fmt == "pcm" else speech_as(fmt, actual)
    expect_error(fmt, declared, data, f"{declared} Hz", f"{actual} Hz")


def test_opus_accepts_any_declared_rate() -> None:
    # Opus decodes at 48 kHz whatever it was encoded from; the declared rate is moot.
    y = run_stream("opus", 16000, speech_as("opus", 48000))
    assert abs(len(y) - len(speech(16000))) < 800


# --- corrupt, truncated and garbage data ------------------------------------------
@pytest.mark.parametrize("fmt", ["mp3", "opus", "speex", "aac", "amr", "wav"])
def test_random_bytes_are_refused(fmt: str) -> None:
    rate = 8000 if fmt == "amr" else 16000
    expect_error(fmt, rate, random_bytes(20000), f"'{fmt}'")


@pytest.mark.parametrize(
    ("fmt", "rate", "keep"),
    [("mp3", 16000, 40), ("mp3", 16000, 3000), ("opus", 48000, 300), ("opus", 48000, 5000),
     ("aac", 16000, 10), ("aac", 16000, 3000), ("amr", 8000, 6), ("amr", 8000, 2000),
     ("speex", 16000, 200), ("speex", 16000, 5000)],
)  # fmt: skip
def test_valid_start_then_garbage(fmt: str, rate: int, keep: int) -> None:
    """A real header (and maybe some audio) followed by garbage: an error, never a hang.

    Short damage is skipped (the decoders resynchronise); sustained garbage is refused,
    at the latest after 256 KiB without audio.
    """
    data = speech_as(fmt, rate)[:keep] + random_bytes(400_000, seed=keep)
    expect_error(fmt, rate, data, f"'{fmt}'")


@pytest.mark.parametrize(
    ("fmt", "rate", "keep"),
    [("opus", 48000, 30), ("opus", 48000, 100), ("speex", 8000, 60), ("mp3", 16000, 100),
     ("aac", 16000, 100), ("amr", 8000, 7)],
)  # fmt: skip
def test_truncated_before_any_audio(fmt: str, rate: int, keep: int) -> None:
    expect_error(fmt, rate, speech_as(fmt, rate)[:keep], f"'{fmt}'")


def test_truncated_mid_stream_keeps_what_was_sent() -> None:
    data = speech_as("mp3", 16000)
    y = run_stream("mp3", 16000, data[: len(data) // 2])
    assert 4.0 * 16000 < len(y) < 6.0 * 16000


def test_error_in_decode_thread_surfaces_from_feed() -> None:
    """Good audio comes out first; the garbage's error is raised by a later feed()."""
    data = speech_as("opus", 48000)
    data = data[: len(data) // 2] + random_bytes(400_000)
    dec = StreamDecoder("opus", 48000)
    got = 0
    try:
        with pytest.raises(AudioFormatError, match="'opus'"):
            for i in range(0, len(data), FRAME):
                got += dec.feed(data[i : i + FRAME]).size
            dec.flush()
        assert got > 3 * 16000
        # The decoder stays failed, with the same error.
        with pytest.raises(AudioFormatError, match="'opus'"):
            dec.feed(b"more")
        with pytest.raises(AudioFormatError, match="'opus'"):
            dec.flush()
    finally:
        dec.close()
        dec.close()


# --- buffer caps -------------------------------------------------------------------
def test_single_frame_over_the_buffer_cap() -> None:
    data = speech_as("mp3", 16000)
    with (
        StreamDecoder("mp3", 16000, max_buffer_bytes=len(data) - 1) as dec,
        pytest.raises(AudioFormatError, match="too much"),
    ):
        dec.feed(data)
    with (
        StreamDecoder("opus", 48000, max_buffer_bytes=4096) as dec,
        pytest.raises(AudioFormatError, match="4096 bytes"),
    ):
        dec.feed(speech_as("opus", 48000)[:5000])
    # Same once decoding has started (the bytes would queue for the decode thread).
    with StreamDecoder("mp3", 16000, max_buffer_bytes=8192) as dec:
        assert dec.feed(data[:4000]).size > 0
        with pytest.raises(AudioFormatError, match="8192 bytes"):
            dec.feed(data[4000:14000])


def test_huge_id3_tag_hits_the_cap() -> None:
    # An ID3 tag claiming ~128 MB: its bytes would have to be held to find the audio.
    header = b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f"
    dec = StreamDecoder("mp3", 16000, max_buffer_bytes=64 * 1024)
    try:
        with pytest.raises(AudioFormatError, match="too much"):
            for _ in range(100):
                dec.feed(header + bytes(FRAME))
    finally:
        dec.close()


def test_endless_undecodable_data_hits_the_cap() -> None:
    # Valid Ogg/Opus headers, then zeros: the demuxer skips them looking for a page,
    # forever. The decoder gives up once max_buffer_bytes go by without audio.
    data = speech_as("opus", 48000)[:200] + bytes(300_000)
    expect_error("opus", 48000, data, "no audio", max_buffer_bytes=64 * 1024)


def test_mp4_without_leading_index_is_capped() -> None:
    data = m4a(faststart=False)
    expect_error("aac", 16000, data, "too much", max_buffer_bytes=len(data) // 2)
