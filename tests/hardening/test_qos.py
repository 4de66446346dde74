"""Realtime stays realtime while a file task runs (issue 12 item 1, QoS).

Work classes in the inference scheduler: realtime finals > realtime previews > sync requests >
file-task windows. The in-process tests use the real Whisper model behind a gate that holds the
first decode, so the queue is filled deterministically, and read the scheduler's own service
order: nothing here depends on how fast the machine is. The end-to-end test runs a file task and
a realtime SDK session on one real server at the same time and checks both results and that the
server decoded the file's windows as file work.
"""

from __future__ import annotations

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


def audio_of(clip_id: str) -> np.ndarray:
    return np.frombuffer(clip_pcm(clip_id), dtype="<i2").astype(np.float32) / 32768


class GatedBackend:
    """The real backend; its first decode waits for `gate`, so the test fills the queue meanwhile.
    Records each batch's size and priority mix (via the scheduler's log) for the assertions."""

    def __init__(self, inner: WhisperBackend) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.sizes: list[int] = []

    def decode_batch(self, items):
        self.sizes.append(len(items))
        self.entered.set()
        assert self.gate.wait(WAIT_S)
        return self.inner.decode_batch(items)


@pytest.fixture(scope="module")
def backend() -> WhisperBackend:
    return WhisperBackend(ModelStore().resolve("whisper-base"))


FULL = DecodeOptions(beam_size=5, full_window=True, word_timestamps=True)  # file / sync / final
PREVIEW = DecodeOptions(beam_size=1, full_window=False, word_timestamps=False,
                        temperature_fallback=False)


def _run_gated(backend: WhisperBackend, realtime: bool, hold_s: float):
    """One file window decoding (held), 4 more queued, then (optionally) realtime + sync work."""
    gated = GatedBackend(backend)
    sched = InferenceScheduler(gated, max_batch=4, max_wait_s=0.005, realtime_hold_s=hold_s)  # type: ignore[arg-type]
    try:
        file_audio = audio_of(FILE_CLIP)
        files = [sched.submit(file_audio, FULL, Priority.FILE)]
        assert gated.entered.wait(WAIT_S)  # the worker holds window 0
        files += [sched.submit(file_audio, FULL, Priority.FILE) for _ in range(4)]
        others: dict[str, object] = {}
        if realtime:
            others["sync"] = sched.submit(audio_of(SYNC_CLIP), FULL, Priority.SYNC)
            others["partial"] = sched.submit(audio_of(EN), PREVIEW, Priority.PARTIAL, key="s1")
            others["final"] = sched.submit(audio_of(EN), FULL, Priority.FINAL)
        gated.gate.set()
        file_results = [f.result(WAIT_S) for f in files]
        other_results = {k: f.result(WAIT_S) for k, f in others.items()}  # type: ignore[attr-defined]
        return sched, gated, file_results, other_results
    finally:
        sched.close()


@pytest.mark.timeout(WAIT_S * 2)
def test_realtime_served_before_earlier_file_windows(backend):
    sched, gated, file_results, other = _run_gated(backend, realtime=True, hold_s=60.0)
    log = sched.service_log()
    # Service order: the held window, then realtime final, preview, sync, then the queued windows,
    # although those were submitted (smaller sequence numbers) before any of the others.
    assert [p for _, p in log] == [Priority.FILE, Priority.FINAL, Priority.PARTIAL, Priority.SYNC,
                                   *[Priority.FILE] * 4], log
    final_seq = next(s for s, p in log if p == Priority.FINAL)
    assert all(s < final_seq for s, p in log[4:]), log
    # While realtime work is about, file windows go one per batch (a window in flight cannot be
    # pre-empted: a realtime request then waits for one window, not a batch of four).
    assert gated.sizes == [1, 1, 1, 1, 1, 1, 1, 1], gated.sizes
    # Everyone got the right text: file work still completes.
    ref = clip(FILE_CLIP)["reference"]
    for tr in file_results:
        assert tr is not None and error_rate("en", ref, tr.text) <= 0.25, tr
    assert error_rate("en", clip(EN)["reference"], other["final"].text) <= 0.5, other["final"]
    assert other["partial"] is not None and other["partial"].text.strip(), other["partial"]
    assert error_rate("en", clip(SYNC_CLIP)["reference"], other["sync"].text) <= 0.4, other["sync"]
    assert sched.stats.served_by_priority == {"file": 5, "final": 1, "partial": 1, "sync": 1}


@pytest.mark.timeout(WAIT_S * 2)
def test_file_windows_batch_when_no_realtime_and_do_not_steer_realtime_pacing(backend):
    sched, gated, file_results, _ = _run_gated(backend, realtime=False, hold_s=0.0)
    # No realtime work: file windows are batched for throughput again.
    assert gated.sizes == [1, 4], gated.sizes
    assert all(tr is not None and tr.text.strip() for tr in file_results)
    # The latency averages the recognizer paces previews and speculation by stay realtime-only:
    # a file window's long queue wait must not make a stream's previews back off.
    assert sched.stats.final_latency_ema_s == 1.0 and sched.stats.partial_latency_ema_s == 0.3


@pytest.mark.timeout(WAIT_S * 2)
def test_file_work_progresses_while_a_stream_keeps_talking(backend):
    """File windows wait for a pause in realtime work, but never for ever (`file_max_defer_s`)."""
    sched = InferenceScheduler(backend, max_batch=4, max_wait_s=0.005, realtime_hold_s=60.0,
                               realtime_idle_s=60.0, file_max_defer_s=0.5)
    stop = threading.Event()
    preview = audio_of(EN)[: 16000]

    def talk() -> None:  # a stream that is never quiet: a preview every 0.2 s
        while not stop.is_set():
            sched.submit(preview, PREVIEW, Priority.PARTIAL, key="talker")
            stop.wait(0.2)

    talker = threading.Thread(target=talk, daemon=True)
    try:
        sched.submit(preview, PREVIEW, Priority.PARTIAL, key="talker").result(WAIT_S)
        talker.start()
        file_audio = audio_of(FILE_CLIP)
        results = [sched.submit(file_audio, FULL, Priority.FILE).result(WAIT_S) for _ in range(2)]
    finally:
        stop.set()
        talker.join()
        sched.close()
    assert all(tr is not None and tr.text.strip() for tr in results), results
    kinds = [p for _, p in sched.service_log()]
    assert kinds.count(Priority.FILE) == 2 and Priority.PARTIAL in kinds, kinds


# -- end to end: a file task and a realtime SDK session on one server at the same time -------------
@pytest.fixture(scope="module")
def srv():
    s = ServerProcess(config={"server": {"fetch_allow_private": True}}).start()
    yield s
    s.stop()


@pytest.mark.timeout(WAIT_S * 2)
def test_file_task_and_realtime_stream_together(srv, audio_host):
    ids = ["en_librispeech_1995-1837-0001", "en_jfk_inaugural", "en_ljspeech_LJ001-0001",
           "en_beckett"]
    pcm, reference, _ = concat_clips(ids, gap_s=1.0)
    url = audio_host.put("qos_file.wav", wav_bytes(pcm))
    with sdk_at(srv):
        task = Transcription.async_call(model="paraformer-v2", file_urls=[url])
        assert task.status_code == 200, (task.status_code, task.code, task.message)
        # Stream while the file task is decoding (it is queued before the stream starts).
        time.sleep(1.0)
        run = stream_recognition(clip_pcm(EN), chunk=3200, pace=0.1)
        done = Transcription.wait(task=task.output.task_id, wait_timeout=WAIT_S)
    check_streamed_run(run)
    assert error_rate("en", clip(EN)["reference"], run.recorder.final_text()) <= 0.5, \
        run.recorder.summary()
    out = output_dict(done)
    assert out.get("task_status") == "SUCCEEDED", out
    doc = get_doc(out["results"][0]["transcription_url"])
    text = " ".join(t["text"] for t in doc["transcripts"])
    assert error_rate("en", reference, text) <= 0.3, text
    served = next(iter(srv.health()["models"].values()))["served"]
    # The file's windows went in as file work, the stream's sentence as a realtime final.
    assert served.get("file", 0) >= 2 and served.get("final", 0) >= 1, served
    assert "sync" not in served, served
