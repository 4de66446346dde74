"""Inference WebSocket audio formats with the official SDK: matrix row 18 and bad audio.

Row 18: a real clip re-encoded inside the test (PyAV: mp3, Ogg/Opus, AAC/ADTS, AMR-NB; the
`speexenc` CLI: Ogg/Speex) and recognised with `Recognition.call()`. Bad audio (random bytes
declared as mp3, truncated files, a format the server does not know) must come back as a clear
task-failed (SDK: status 44 with a message naming the problem), and the server keeps serving.
"""

from __future__ import annotations

import random

import pytest
from dashscope.audio.asr import Recognition

from tests.audio.media import encode, speex_encode
from tests.protocols.inference_helpers import as_float, check_call_result, check_failed_call, good_call, write
from tests.support import clip, clip_pcm

EN = "en_ldc93s1"
ZH = "zh_funasr_asr_example"
# Realtime Ogg writers flush a page every packet or few (FFmpeg's default holds a page per second).
OGG_OPTIONS = {"page_duration": "100000"}


def _encoded(fmt: str) -> bytes:
    pcm16k = clip_pcm(EN, 16000)
    if fmt == "mp3":
        return encode(as_float(pcm16k), 16000, "libmp3lame", "mp3")
    if fmt == "opus":
        return encode(as_float(pcm16k), 16000, "libopus", "ogg", container_options=OGG_OPTIONS)
    if fmt == "aac":
        return encode(as_float(pcm16k), 16000, "aac", "adts")
    if fmt == "speex":
        return speex_encode(as_float(pcm16k), 16000)  # skips (with the reason) without speexenc
    raise AssertionError(fmt)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "speex"])
def test_row18_compressed_formats_16k(dashscope_at, tmp_path, fmt):
    data = _encoded(fmt)
    r = Recognition(model="fun-asr-realtime", format=fmt, sample_rate=16000, callback=None)
    check_call_result(r.call(write(tmp_path, f"clip.{fmt}", data)), r, EN)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("model", ["paraformer-realtime-8k-v2", "paraformer-realtime-v2"])
def test_row18_amr_nb(dashscope_at, tmp_path, model):
    # AMR-NB is 8 kHz: an 8 kHz model (Chinese-only, so a Mandarin clip), or paraformer-realtime-v2
    # which takes any rate.
    data = encode(as_float(clip_pcm(ZH, 8000)), 8000, "libopencore_amrnb", "amr", bit_rate=12200)
    assert data.startswith(b"#!AMR\n")
    r = Recognition(model=model, format="amr", sample_rate=8000, callback=None)
    check_call_result(r.call(write(tmp_path, "clip.amr", data)), r, ZH)


# -- bad audio: a clear error, then the server still serves -----------------------------------------
@pytest.mark.timeout(30)
def test_unsupported_format(dashscope_at):
    r = Recognition(model="fun-asr-realtime", format="flac", sample_rate=16000, callback=None)
    check_failed_call(r.call(str(clip(EN)["file"])), r, "flac", "format")
    good_call()


@pytest.mark.timeout(30)
def test_random_bytes_declared_as_mp3(dashscope_at, tmp_path):
    data = random.Random(7).randbytes(40000)
    r = Recognition(model="fun-asr-realtime", format="mp3", sample_rate=16000, callback=None)
    check_failed_call(r.call(write(tmp_path, "noise.mp3", data)), r, "mp3")
    good_call()


@pytest.mark.timeout(30)
def test_truncated_wav(dashscope_at, tmp_path):
    data = clip(EN)["file"].read_bytes()[:30]  # cut inside the 44-byte header
    r = Recognition(model="fun-asr-realtime", format="wav", sample_rate=16000, callback=None)
    check_failed_call(r.call(write(tmp_path, "cut.wav", data)), r, "wav", "header", "truncated", "ended")
    good_call()


@pytest.mark.timeout(30)
def test_truncated_ogg_opus(dashscope_at, tmp_path):
    data = _encoded("opus")[:60]  # cut inside the Ogg/Opus header pages
    r = Recognition(model="fun-asr-realtime", format="opus", sample_rate=16000, callback=None)
    check_failed_call(r.call(write(tmp_path, "cut.opus", data)), r, "opus", "ended", "truncated",
                      "corrupt")
    good_call()


@pytest.mark.timeout(30)
def test_truncated_mp3(dashscope_at, tmp_path):
    data = _encoded("mp3")[:200]  # less than one MPEG frame
    r = Recognition(model="fun-asr-realtime", format="mp3", sample_rate=16000, callback=None)
    check_failed_call(r.call(write(tmp_path, "cut.mp3", data)), r, "mp3", "corrupt", "truncated",
                      "ended")
    good_call()
