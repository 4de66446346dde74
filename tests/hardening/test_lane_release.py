"""The file lane gives its model replica back when idle (issue 12, Memory).

The lane's second CTranslate2 replica costs ~125 MB of RSS for as long as it is held. After
`file_lane_idle_s` without file windows to decode (realtime work gone, so file windows are the main
model's again) the scheduler drops it, and builds a new one when file and realtime work next meet.
Checked in-process with stand-in backends, by which backend decoded each request and in what order,
and by the dropped replica being garbage (nothing keeps it alive): nothing here depends on how fast
the machine is (the idle period is a setting; the test waits for the release, however long it takes).
The same on a real `voxscope serve`: a stream and a file task together load a replica, it is
released when idle (`/health`), and a second stream + file task load a new one.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref

import numpy as np
import pytest
from dashscope.audio.asr import Transcription

from tests.files.helpers import get_doc, output_dict, wait_until
from tests.protocols.inference_helpers import check_streamed_run, stream_recognition
from tests.support import ServerProcess, clip, clip_pcm, error_rate, sdk_at, wav_bytes
from voxscope.engine.scheduler import InferenceScheduler
from voxscope.engine.types import DecodeOptions, Priority

WAIT_S = 300  # generous: the machine is shared
EN = "en_ldc93s1"  # the realtime sentence
FILE_CLIP = "en_librispeech_1995-1837-0001"  # the file task
FULL = DecodeOptions(beam_size=5, full_window=True, word_timestamps=True)
AUDIO = np.zeros(1600, dtype=np.float32)


class Backend:
    """Stands in for WhisperBackend: each decode returns (this backend's name, request tag)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def decode_batch(self, items):
        return [(self.name, float(audio[0])) for audio, _ in items]


def tagged(tag: int) -> np.ndarray:
    a = AUDIO.copy()
    a[0] = tag
    return a


def test_idle_lane_replica_is_released_and_built_again():
    built: list[weakref.ref] = []

    def factory() -> Backend:
        b = Backend(f"lane{len(built) + 1}")
        built.append(weakref.ref(b))
        return b

    # realtime_hold_s: once a realtime request was seen, file windows are the lane's for the rest
    # of the test; file_lane_idle_s: the lane gives its replica back soon after its last window.
    sched = InferenceScheduler(Backend("main"), file_lane=factory, realtime_hold_s=600,
                               file_lane_idle_s=0.3)
    try:
        assert sched.submit(tagged(1), FULL, Priority.FINAL).result(WAIT_S) == ("main", 1.0)
        first = [sched.submit(tagged(10 + i), FULL, Priority.FILE) for i in range(3)]
        assert [f.result(WAIT_S) for f in first] == [("lane1", 10.0), ("lane1", 11.0),
                                                     ("lane1", 12.0)]
        # Idle: the replica is dropped, and nothing holds it any more.
        wait_until(lambda: sched.file_backend is None, WAIT_S, 0.02,
                   "the idle replica to be released")
        gc.collect()
        assert built[0]() is None, "the released replica is still referenced"
        assert sched.file_lane_loads == 1
        # File and realtime work meet again: a new replica decodes the file windows.
        assert sched.submit(tagged(2), FULL, Priority.FINAL).result(WAIT_S) == ("main", 2.0)
        again = [sched.submit(tagged(20 + i), FULL, Priority.FILE) for i in range(2)]
        assert [f.result(WAIT_S) for f in again] == [("lane2", 20.0), ("lane2", 21.0)]
        assert sched.file_lane_loads == 2
    finally:
        sched.close()


def test_lane_replica_kept_when_idle_release_is_off():
    built: list[str] = []

    def factory() -> Backend:
        built.append("lane")
        return Backend("lane")

    sched = InferenceScheduler(Backend("main"), file_lane=factory, realtime_hold_s=600,
                               file_lane_idle_s=0)
    try:
        sched.submit(tagged(1), FULL, Priority.FINAL).result(WAIT_S)
        assert sched.submit(tagged(10), FULL, Priority.FILE).result(WAIT_S) == ("lane", 10.0)
        sched.submit(tagged(2), FULL, Priority.FINAL).result(WAIT_S)
        assert sched.submit(tagged(11), FULL, Priority.FILE).result(WAIT_S) == ("lane", 11.0)
        assert sched.file_backend is not None and built == ["lane"]
    finally:
        sched.close()


@pytest.fixture(scope="module")
def srv():
    # realtime_hold_s: once a stream has submitted work, file windows are the lane's for the rest
    # of the module; file_lane_idle_s: the replica goes soon after the lane's last window.
    s = ServerProcess(config={"server": {"fetch_allow_private": True, "file_lane_threads": 1,
                                         "realtime_hold_s": 600, "file_lane_idle_s": 1}}).start()
    yield s
    s.stop()


def model_health(srv) -> dict:
    return next(iter(srv.health()["models"].values()))


def stream_and_file(srv, url: str) -> None:
    """A realtime stream, then a file task beside it; both must succeed."""
    with sdk_at(srv):
        runs: list = []
        streamer = threading.Thread(target=lambda: runs.append(
            stream_recognition(clip_pcm(EN) + bytes(64000), chunk=3200, pace=0.1)))
        streamer.start()
        served = model_health(srv)["served"].get("final", 0) + model_health(srv)["served"].get(
            "partial", 0)
        deadline = time.monotonic() + WAIT_S
        while (model_health(srv)["served"].get("final", 0)
               + model_health(srv)["served"].get("partial", 0)) <= served:
            assert time.monotonic() < deadline and streamer.is_alive(), "the stream decoded nothing"
            time.sleep(0.05)
        task = Transcription.async_call(model="paraformer-v2", file_urls=[url])
        assert task.status_code == 200, (task.status_code, task.code, task.message)
        streamer.join(WAIT_S)
        done = Transcription.wait(task=task.output.task_id, wait_timeout=WAIT_S)
    assert len(runs) == 1, "the stream did not finish"
    check_streamed_run(runs[0])
    out = output_dict(done)
    assert out.get("task_status") == "SUCCEEDED", out
    text = " ".join(t["text"] for t in get_doc(out["results"][0]["transcription_url"])["transcripts"])
    assert error_rate("en", clip(FILE_CLIP)["reference"], text) <= 0.3, text


@pytest.mark.timeout(WAIT_S * 4)
def test_server_releases_the_idle_replica_and_loads_it_again(srv, audio_host):
    url = audio_host.put("lane_release.wav", wav_bytes(clip_pcm(FILE_CLIP)))
    stream_and_file(srv, url)
    assert model_health(srv)["file_lane_loads"] == 1  # the file's windows went to a replica
    wait_until(lambda: not model_health(srv)["file_lane"], WAIT_S, 0.02,
               "the idle replica to be released")
    stream_and_file(srv, url)  # file and realtime work meet again: a new replica
    assert model_health(srv)["file_lane_loads"] == 2
