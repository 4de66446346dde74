"""The file lane (issue 12, QoS): file windows decode on their own model replica and thread.

With `file_lane_threads > 0` the scheduler decodes file-task windows, while realtime work is about,
in a second thread on a second backend, so a realtime request never waits for a file window in
flight. The in-process test holds the file lane's first window with a gate (real Whisper model
behind it) and checks, by completion order alone, that realtime finals, previews and sync requests
submitted after five file windows are all served while that window is still held, and that every
file window completes once it is released. With no realtime work about, file windows go to the
main model as before and the lane's replica is never loaded. The end-to-end test runs a file task
and a realtime SDK stream together on a real `voxscope serve` with the lane on.
Nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from dashscope.audio.asr import Transcription

from tests.files.helpers import concat_clips, get_doc, output_dict
from tests.protocols.inference_helpers import check_streamed_run, stream_recognition
from tests.support import ServerProcess, clip, clip_pcm, error_rate, sdk_at, wav_bytes
from voxscope.engine.model_store import ModelStore
from voxscope.engine.scheduler import InferenceScheduler
from voxscope.engine.types import DecodeOptions, Priority
from voxscope.engine.whisper_backend import WhisperBackend

EN = "en_ldc93s1"  # 2.9 s: the realtime sentence
FILE_CLIP = "en_librispeech_1995-1837-0001"  # 8.7 s: each file window
SYNC_CLIP = "en_beckett"
WAIT_S = 300  # generous: the machine is shared
NICE = 10

FULL = DecodeOptions(beam_size=5, full_window=True, word_timestamps=True)
PREVIEW = DecodeOptions(beam_size=1, full_window=False, word_timestamps=False,
                        temperature_fallback=False)


def audio_of(clip_id: str) -> np.ndarray:
    return np.frombuffer(clip_pcm(clip_id), dtype="<i2").astype(np.float32) / 32768


class GatedLane:
    """The file lane's backend: the real model, its first decode held until `gate` is set. Records
    the batch sizes and the thread (and its nice value) that decoded them."""

    def __init__(self, inner: WhisperBackend) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.sizes: list[int] = []
        self.nice: list[int] = []
        self.threads: set[str] = set()

    def decode_batch(self, items):
        self.sizes.append(len(items))
        self.threads.add(threading.current_thread().name)
        self.nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        self.entered.set()
        assert self.gate.wait(WAIT_S)
        return self.inner.decode_batch(items)


@pytest.fixture(scope="module")
def backend() -> WhisperBackend:
    return WhisperBackend(ModelStore().resolve("whisper-base"))


@pytest.mark.timeout(WAIT_S * 3)
def test_realtime_is_served_while_a_file_window_is_in_flight(backend):
    lane = GatedLane(backend)
    # Both lanes share one real model here (CTranslate2 queues concurrent calls): the point is the
    # order in which the scheduler serves requests, not a second replica's speed.
    sched = InferenceScheduler(backend, max_batch=4, max_wait_s=0.005, realtime_hold_s=60.0,
                               file_lane=lambda: lane, file_lane_nice=NICE, file_lane_batch=2)  # type: ignore[arg-type, return-value]
    try:
        # A stream is active (realtime_hold_s = 60 s): file windows are the lane's.
        assert sched.submit(audio_of(EN), PREVIEW, Priority.PARTIAL, key="s0").result(WAIT_S)
        file_audio = audio_of(FILE_CLIP)
        files = [sched.submit(file_audio, FULL, Priority.FILE)]
        assert lane.entered.wait(WAIT_S)  # the file lane holds window 0
        files += [sched.submit(file_audio, FULL, Priority.FILE) for _ in range(4)]
        sync = sched.submit(audio_of(SYNC_CLIP), FULL, Priority.SYNC)
        partial = sched.submit(audio_of(EN), PREVIEW, Priority.PARTIAL, key="s1")
        final = sched.submit(audio_of(EN), FULL, Priority.FINAL)
        # Submitted after five file windows, one of them in flight and held: served all the same.
        results = {k: f.result(WAIT_S) for k, f in
                   (("final", final), ("partial", partial), ("sync", sync))}
        assert not any(f.done() for f in files), "no file window may finish while the gate is shut"
        # (The main lane was idle, so each was served as it came: the order among them is the
        # main lane's, which tests/hardening/test_qos.py checks.)
        log = sched.service_log()[1:]  # after the stream's first preview
        assert log[0][1] == Priority.FILE and sorted(p for _, p in log[1:]) == [
            Priority.FINAL, Priority.PARTIAL, Priority.SYNC], log
        lane.gate.set()
        file_results = [f.result(WAIT_S) for f in files]
    finally:
        lane.gate.set()
        sched.close()
    # File work still completes, on the file lane only, oldest window first.
    log = sched.service_log()
    file_seqs = [s for s, p in log if p == Priority.FILE]
    assert file_seqs == sorted(file_seqs) and len(file_seqs) == 5, log
    # Window 0 alone (it came alone), then the four queued ones in batches of file_lane_batch.
    assert lane.sizes == [1, 2, 2], lane.sizes
    assert lane.threads == {"voxscope-inference-file"}, lane.threads
    ref = clip(FILE_CLIP)["reference"]
    for tr in file_results:
        assert tr is not None and error_rate("en", ref, tr.text) <= 0.25, tr
    assert error_rate("en", clip(EN)["reference"], results["final"].text) <= 0.5, results
    assert results["partial"] is not None and results["partial"].text.strip(), results
    assert error_rate("en", clip(SYNC_CLIP)["reference"], results["sync"].text) <= 0.4, results
    assert sched.stats.served_by_priority == {"file": 5, "final": 1, "partial": 2, "sync": 1}
    # The lane runs at the lower CPU priority (unless the whole test already runs lower).
    assert all(n == max(NICE, os.getpriority(os.PRIO_PROCESS, 0)) for n in lane.nice), lane.nice


@pytest.mark.timeout(WAIT_S)
def test_no_lane_replica_until_file_work_meets_realtime_work(backend):
    built: list[int] = []

    def factory():
        built.append(1)
        return backend

    sched = InferenceScheduler(backend, file_lane=factory, realtime_hold_s=60.0)
    try:
        # File work alone: the main model decodes it (all its threads), no second replica.
        assert sched.submit(audio_of(EN), FULL, Priority.FILE).result(WAIT_S).text.strip()
        assert not built and sched.file_backend is None
        # Realtime work alone: no second replica either.
        assert sched.submit(audio_of(EN), FULL, Priority.FINAL).result(WAIT_S).text.strip()
        assert not built and sched.file_backend is None
        # File work while a stream is active: the lane loads its replica and takes it.
        assert sched.submit(audio_of(EN), FULL, Priority.FILE).result(WAIT_S).text.strip()
        assert built == [1] and sched.file_backend is backend
    finally:
        sched.close()


@pytest.mark.timeout(WAIT_S)
def test_a_lane_that_cannot_load_leaves_file_work_to_the_model(backend):
    def broken():
        raise RuntimeError("no memory for a second replica")

    sched = InferenceScheduler(backend, file_lane=broken, realtime_hold_s=60.0)
    try:
        assert sched.submit(audio_of(EN), FULL, Priority.FINAL).result(WAIT_S).text.strip()
        tr = sched.submit(audio_of(EN), FULL, Priority.FILE).result(WAIT_S)
    finally:
        sched.close()
    assert tr is not None and error_rate("en", clip(EN)["reference"], tr.text) <= 0.5, tr


# -- end to end: a real server with the lane on ----------------------------------------------------
@pytest.fixture(scope="module")
def srv():
    # realtime_hold_s: once the stream has submitted work, file windows are the lane's for the
    # rest of the test, however fast or slow the machine decodes.
    s = ServerProcess(config={"server": {"fetch_allow_private": True, "file_lane_threads": 1,
                                         "realtime_hold_s": 600}}).start()
    yield s
    s.stop()


@pytest.mark.timeout(WAIT_S * 2)
def test_file_task_on_the_lane_beside_a_realtime_stream(srv, audio_host):
    ids = ["en_librispeech_1995-1837-0001", "en_jfk_inaugural", "en_ljspeech_LJ001-0001"]
    pcm, reference, _ = concat_clips(ids, gap_s=1.0)
    url = audio_host.put("qos_lane.wav", wav_bytes(pcm))
    with sdk_at(srv):
        # The stream first (its work marks realtime as about), then the file task beside it.
        runs: list = []
        streamer = threading.Thread(target=lambda: runs.append(
            stream_recognition(clip_pcm(EN) + bytes(64000), chunk=3200, pace=0.1)))
        streamer.start()
        deadline = time.monotonic() + WAIT_S
        while not next(iter(srv.health()["models"].values()))["served"]:
            assert time.monotonic() < deadline and streamer.is_alive(), "the stream decoded nothing"
            time.sleep(0.05)
        task = Transcription.async_call(model="paraformer-v2", file_urls=[url])
        assert task.status_code == 200, (task.status_code, task.code, task.message)
        streamer.join(WAIT_S)
        done = Transcription.wait(task=task.output.task_id, wait_timeout=WAIT_S)
    assert len(runs) == 1, "the stream did not finish"
    run = runs[0]
    check_streamed_run(run)
    assert error_rate("en", clip(EN)["reference"], run.recorder.final_text()) <= 0.5, \
        run.recorder.summary()
    out = output_dict(done)
    assert out.get("task_status") == "SUCCEEDED", out
    doc = get_doc(out["results"][0]["transcription_url"])
    text = " ".join(t["text"] for t in doc["transcripts"])
    assert error_rate("en", reference, text) <= 0.3, text
    model = next(iter(srv.health()["models"].values()))
    assert model["file_lane"] is True, model  # the file's windows went to the lane's replica
    assert model["served"].get("file", 0) >= 2 and model["served"].get("final", 0) >= 1, model
