"""StreamDecoder resources: decode threads always end, close() is safe anywhere."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from tests.audio.media import speech_as
from voxscope.audio import AudioFormatError, StreamDecoder

pytestmark = pytest.mark.timeout(30)

FRAME = 3200
# Formats decoded on a thread (pcm and wav are not).
THREADED = [("mp3", 16000), ("opus", 48000), ("aac", 16000), ("amr", 8000), ("speex", 16000)]


def audio_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("voxscope-audio")]


def wait_for_no_audio_threads(timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while audio_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not audio_threads(), audio_threads()


@pytest.fixture(autouse=True)
def thread_baseline():  # type: ignore[no-untyped-def]
    wait_for_no_audio_threads()
    baseline = threading.active_count()
    yield
    wait_for_no_audio_threads()
    assert threading.active_count() == baseline


def half_fed(fmt: str, rate: int) -> StreamDecoder:
    data = speech_as(fmt, rate)
    dec = StreamDecoder(fmt, rate)
    for i in range(0, len(data) // 2, FRAME):
        dec.feed(data[i : i + FRAME])
    return dec


@pytest.mark.parametrize(("fmt", "rate"), THREADED)
def test_close_mid_stream_ends_the_thread(fmt: str, rate: int) -> None:
    dec = half_fed(fmt, rate)
    assert len(audio_threads()) == 1
    dec.close()
    assert not audio_threads()  # close() waits for the thread
    dec.close()  # idempotent
    with pytest.raises(AudioFormatError, match="closed"):
        dec.feed(b"\0" * 10)
    with pytest.raises(AudioFormatError, match="closed"):
        dec.flush()


@pytest.mark.parametrize(("fmt", "rate"), THREADED)
def test_dropped_decoder_ends_its_thread(fmt: str, rate: int) -> None:
    """A client that vanishes mid-stream: nobody calls close(), the object is dropped."""
    dec = half_fed(fmt, rate)
    assert len(audio_threads()) == 1
    del dec
    gc.collect()
    wait_for_no_audio_threads()


@pytest.mark.parametrize(("fmt", "rate"), THREADED)
def test_flush_ends_the_thread(fmt: str, rate: int) -> None:
    data = speech_as(fmt, rate)
    dec = StreamDecoder(fmt, rate)
    assert dec.feed(data).size + dec.flush().size > 9 * 16000
    assert not audio_threads()
    with pytest.raises(AudioFormatError, match="after the end"):
        dec.feed(data[:10])
    assert dec.flush().size == 0
    dec.close()


def test_error_ends_the_thread_and_close_still_works() -> None:
    data = speech_as("mp3", 16000)
    dec = StreamDecoder("mp3", 16000)
    dec.feed(data[:5000])
    with pytest.raises(AudioFormatError):
        dec.feed(bytes(range(256)) * 2000)  # garbage mid-stream
    assert not audio_threads()
    dec.close()
    dec.close()


def test_close_from_another_thread_while_feeding() -> None:
    data = speech_as("opus", 48000)
    dec = StreamDecoder("opus", 48000)
    outcome: list[str] = []
    started = threading.Event()

    def client() -> None:
        try:
            for _ in range(1000):
                for i in range(0, len(data), 200):
                    dec.feed(data[i : i + 200])
                    started.set()
            outcome.append("finished")
        except AudioFormatError as e:
            outcome.append(e.message)

    feeder = threading.Thread(target=client)
    feeder.start()
    assert started.wait(5)
    time.sleep(0.05)
    dec.close()
    feeder.join(5)
    assert not feeder.is_alive()
    assert outcome and "closed" in outcome[0]


def test_close_before_any_data() -> None:
    for fmt, rate in THREADED:
        dec = StreamDecoder(fmt, rate)
        dec.close()
        with pytest.raises(AudioFormatError):
            dec.feed(b"abc")


def test_many_concurrent_streams() -> None:
    decoders = [half_fed(fmt, rate) for fmt, rate in THREADED * 4]
    assert len(audio_threads()) == len(decoders)
    for dec in decoders:
        dec.close()
