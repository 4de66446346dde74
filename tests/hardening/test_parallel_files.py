"""File windows decode two at once on replicas of one model object (issue 12, Files).

With `model_workers: 2` the main model has two CTranslate2 replicas that share its weights, and the
scheduler runs a second thread beside the main lane: while no realtime work is about, file windows
(and sync requests) go one per decode to either thread, so two decode at once. Realtime work only
ever goes to the main lane, and the second thread takes no new file window while realtime work is
about: a realtime request that arrives while two file windows decode waits for the main lane's
window, never for both. Checked in-process with a stand-in backend whose decodes are held by gates
(by which thread decoded what, and in what order; no timings), and on two real `voxscope serve`
processes: the same file task with one replica and with two gives the same transcript.
"""

from __future__ import annotations

import threading

import pytest
from dashscope.audio.asr import Transcription

from tests.files.helpers import concat_clips, get_doc, output_dict
from tests.hardening.test_lane_release import tagged
from tests.support import ServerProcess, error_rate, sdk_at, wav_bytes
from voxscope.engine.scheduler import InferenceScheduler
from voxscope.engine.types import DecodeOptions, Priority

WAIT_S = 300  # generous: the machine is shared
FULL = DecodeOptions(beam_size=5, full_window=True, word_timestamps=True)
PREVIEW = DecodeOptions(beam_size=1, full_window=False, word_timestamps=False)
MAIN, SECOND = "voxscope-inference", "voxscope-inference-2"


class GatedBackend:
    """Stands in for a two-replica WhisperBackend. A request tagged t (audio[0]) whose tag is in
    `gates` is held until that gate is set; every decode records (thread name, tags)."""

    workers = 2

    def __init__(self, gated: tuple[int, ...] = ()) -> None:
        self.gates = {t: threading.Event() for t in gated}
        self.entered = {t: threading.Event() for t in gated}
        self.calls: list[tuple[str, list[int]]] = []
        self._lock = threading.Lock()
        self.running = 0
        self.most_running = 0

    def decode_batch(self, items):
        tags = [int(a[0]) for a, _ in items]
        with self._lock:
            self.calls.append((threading.current_thread().name, tags))
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            for t in tags:
                if t in self.gates:
                    self.entered[t].set()
                    assert self.gates[t].wait(WAIT_S)
            return [t for t in tags]
        finally:
            with self._lock:
                self.running -= 1

    def release(self) -> None:
        for g in self.gates.values():
            g.set()

    def thread_of(self, tag: int) -> str:
        return next(name for name, tags in self.calls if tag in tags)


@pytest.mark.timeout(WAIT_S)
def test_two_file_windows_decode_at_once_on_two_threads():
    backend = GatedBackend(gated=(1, 2))
    sched = InferenceScheduler(backend, max_batch=4, realtime_hold_s=60.0)  # type: ignore[arg-type]
    try:
        futures = [sched.submit(tagged(t), FULL, Priority.FILE) for t in (1, 2, 3, 4)]
        # Windows 1 and 2 are both in flight at once (neither can finish: both gates are shut).
        assert backend.entered[1].wait(WAIT_S) and backend.entered[2].wait(WAIT_S)
        assert backend.running == 2
        assert {backend.thread_of(1), backend.thread_of(2)} == {MAIN, SECOND}
        backend.release()
        assert [f.result(WAIT_S) for f in futures] == [1, 2, 3, 4]
    finally:
        backend.release()
        sched.close()
    # One window per decode, oldest first, never more than two at once.
    assert all(len(tags) == 1 for _, tags in backend.calls), backend.calls
    assert [s for s, _ in sched.service_log()] == [0, 1, 2, 3]
    assert backend.most_running == 2


@pytest.mark.timeout(WAIT_S)
def test_realtime_waits_for_one_file_window_not_both():
    """Two file windows in flight, more queued; a final and a preview arrive. The final is served
    as soon as the main lane's window ends, while the second thread's window is still held; the
    file windows queued before it wait; realtime work never runs on the second thread."""
    backend = GatedBackend(gated=(1, 2))
    sched = InferenceScheduler(backend, max_batch=4, realtime_hold_s=60.0)  # type: ignore[arg-type]
    try:
        files = [sched.submit(tagged(t), FULL, Priority.FILE) for t in (1, 2, 3, 4)]
        assert backend.entered[1].wait(WAIT_S) and backend.entered[2].wait(WAIT_S)
        final = sched.submit(tagged(100), FULL, Priority.FINAL)
        preview = sched.submit(tagged(101), PREVIEW, Priority.PARTIAL, key="s")
        main_tag = 1 if backend.thread_of(1) == MAIN else 2
        second_tag = 3 - main_tag
        backend.gates[main_tag].set()  # the main lane's window ends; the other stays in flight
        assert final.result(WAIT_S) == 100 and preview.result(WAIT_S) == 101
        assert not files[second_tag - 1].done(), "the second thread's window is still held"
        assert not files[2].done() and not files[3].done(), "queued file windows wait"
        backend.gates[second_tag].set()
        assert [f.result(WAIT_S) for f in files] == [1, 2, 3, 4]
    finally:
        backend.release()
        sched.close()
    assert backend.thread_of(100) == MAIN and backend.thread_of(101) == MAIN
    order = [tags[0] for _, tags in backend.calls]
    # Realtime (final first, then the preview) before the file windows queued earlier.
    assert order.index(100) < order.index(101) < order.index(3) < order.index(4), order


@pytest.mark.timeout(WAIT_S)
def test_shared_lane_decodes_files_beside_realtime_one_at_a_time():
    """`file_lane_shared`: while realtime work is about, file windows go to the second thread only,
    one at a time (the other replica stays free for realtime work), and realtime work is served on
    the main lane while a file window is in flight there."""
    backend = GatedBackend(gated=(1,))
    sched = InferenceScheduler(backend, max_batch=4, realtime_hold_s=60.0,  # type: ignore[arg-type]
                               file_lane_shared=True)
    try:
        assert sched.submit(tagged(50), PREVIEW, Priority.PARTIAL, key="s").result(WAIT_S) == 50
        files = [sched.submit(tagged(t), FULL, Priority.FILE) for t in (1, 2, 3)]
        assert backend.entered[1].wait(WAIT_S)
        final = sched.submit(tagged(100), FULL, Priority.FINAL)
        assert final.result(WAIT_S) == 100  # while file window 1 is held
        assert not any(f.done() for f in files)
        backend.release()
        assert [f.result(WAIT_S) for f in files] == [1, 2, 3]
    finally:
        backend.release()
        sched.close()
    assert all(backend.thread_of(t) == SECOND for t in (1, 2, 3)), backend.calls
    assert backend.thread_of(100) == MAIN and backend.thread_of(50) == MAIN
    assert backend.most_running == 2


@pytest.mark.timeout(WAIT_S)
def test_one_replica_keeps_one_thread():
    class One(GatedBackend):
        workers = 1

    backend = One()
    sched = InferenceScheduler(backend, max_batch=4, realtime_hold_s=60.0)  # type: ignore[arg-type]
    try:
        assert [f.result(WAIT_S) for f in
                [sched.submit(tagged(t), FULL, Priority.FILE) for t in (1, 2, 3)]] == [1, 2, 3]
    finally:
        sched.close()
    assert {name for name, _ in backend.calls} == {MAIN}


IDS = ["en_librispeech_1995-1837-0001", "en_jfk_inaugural", "en_ljspeech_LJ001-0001",
       "en_beckett"] * 2  # ~90 s: several full windows


def run_task(workers: int, url: str) -> str:
    """One file task on a fresh server with `model_workers: workers`: its transcript (text and
    sentence timings)."""
    srv = ServerProcess(config={"server": {"fetch_allow_private": True, "cpu_threads": 2,
                                           "model_workers": workers}}).start()
    try:
        with sdk_at(srv):
            task = Transcription.async_call(model="paraformer-v2", file_urls=[url])
            assert task.status_code == 200, (task.status_code, task.code, task.message)
            done = Transcription.wait(task=task.output.task_id, wait_timeout=WAIT_S)
        out = output_dict(done)
        assert out.get("task_status") == "SUCCEEDED", out
        doc = get_doc(out["results"][0]["transcription_url"])
    finally:
        srv.stop()
    return "\n".join(f"{s['begin_time']} {s['end_time']} {s['text']}"
                     for t in doc["transcripts"] for s in t["sentences"])


@pytest.mark.timeout(WAIT_S * 3)
def test_parallel_file_windows_give_the_same_transcript(audio_host):
    pcm, reference, _ = concat_clips(IDS, gap_s=1.0)
    url = audio_host.put("parallel_files.wav", wav_bytes(pcm))
    one = run_task(1, url)
    two = run_task(2, url)
    assert error_rate("en", reference, " ".join(x.split(" ", 2)[2] for x in two.splitlines()
                                                if x.count(" ") >= 2)) <= 0.3, two
    assert two == one


LOAD_RSS = """
import sys
from voxscope.engine.model_store import ModelStore
from voxscope.engine.whisper_backend import WhisperBackend
backend = WhisperBackend(ModelStore().resolve("whisper-base"), cpu_threads=2,
                         workers=int(sys.argv[1]))
with open("/proc/self/status") as fh:
    print(next(int(x.split()[1]) for x in fh if x.startswith("VmRSS:")))
"""


@pytest.mark.timeout(WAIT_S)
def test_a_second_replica_shares_the_weights():
    """A model object with two replicas holds about what one holds after loading (the weights
    are shared; a separate second model costs ~+117 MB). RSS in KiB of two child processes,
    compared as a ratio: it does not depend on the machine's load."""
    import subprocess
    import sys

    rss = {}
    for workers in (1, 2):
        out = subprocess.run([sys.executable, "-c", LOAD_RSS, str(workers)], capture_output=True,
                             text=True, timeout=WAIT_S)
        assert out.returncode == 0, out.stderr[-2000:]
        rss[workers] = int(out.stdout.strip().splitlines()[-1])
    print("RSS after load (KiB):", rss)
    assert rss[2] < 1.1 * rss[1], rss


@pytest.mark.timeout(WAIT_S)
def test_a_request_the_second_thread_took_during_batch_collection_is_no_error(caplog):
    """The main lane collects a batch for `max_wait_s` with the lock released; the second thread
    may take the only request meanwhile. The main lane then looks again (it raised StopIteration
    and logged "scheduler failed to form a batch": `voxscope transcribe` printed a traceback)."""
    backend = GatedBackend()
    sched = InferenceScheduler(backend, max_batch=4, max_wait_s=0.05,  # type: ignore[arg-type]
                               realtime_hold_s=60.0)
    try:
        for t in range(20):  # one at a time: each is the only request while the main lane waits
            assert sched.submit(tagged(t), FULL, Priority.SYNC).result(WAIT_S) == t
    finally:
        sched.close()
    assert SECOND in {name for name, _ in backend.calls}, backend.calls
    assert "failed to form a batch" not in caplog.text, caplog.text
