"""Scale-out with a real Redis: one API process (`workers: 0`) and two `voxscope worker` processes
share the queue (redis) and the database (one SQLite file all three reach); every task succeeds
exactly once.

"Exactly once" is read from the shared database: each task has `attempts == 1`, all its chunks
come from one worker, no chunk `seq` appears twice and no two chunks of a channel overlap. The API
process decodes nothing. Both workers are expected to get work; if all tasks went to one, that is
reported as a warning, not a failure. Skipped (with the reason) when `redis-server` is missing.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import pytest
from dashscope.audio.qwen_asr import QwenTranscription

from tests.files.helpers import (
    QWEN,
    WorkerProcess,
    check_chunks_once,
    chunks_of,
    get_doc,
    output_dict,
    task_record,
)
from tests.support import ServerProcess, clip, error_rate, free_port, sdk_at

CLIPS = ["en_beckett", "zh_cosyvoice_zero_shot_prompt", "zh_BAC009S0764W0121",
         "zh_paddlespeech_zh", "zh_funasr_asr_example", "en_librispeech_1995-1837-0001"]


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_port():
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server; scripts/test.sh "
                    "installs it)")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="voxscope-redis-"))
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not _ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start (exit {proc.poll()})")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(redis_port):
    shared = Path(tempfile.mkdtemp(prefix="voxscope-shared-"))
    db = shared / "voxscope.db"
    common = {"queue_url": f"redis://127.0.0.1:{redis_port}/0", "database_url": f"sqlite:///{db}",
              "secret_key": "scale-out-test-secret", "fetch_allow_private": True,
              "task_lease_s": 15, "cpu_threads": 1}
    api = ServerProcess(config={"server": {**common, "workers": 0}})
    workers = [WorkerProcess(config={"server": {**common, "workers": 1}}, name=f"w{i}", workdir=shared)
               for i in (1, 2)]
    started: list = []
    try:
        for w in workers:
            started.append(w.start())
        started.append(api.start())
        yield api, workers, db
    finally:
        for p in reversed(started):
            with contextlib.suppress(Exception):
                p.stop()


@pytest.mark.timeout(420)
def test_two_workers_share_tasks_exactly_once(cluster, audio_host):
    api, workers, db = cluster
    with sdk_at(api):
        submitted = {}
        for cid in CLIPS:
            r = QwenTranscription.async_call(model=QWEN, file_url=audio_host.clip_url(cid))
            assert r.status_code == 200, (cid, r.status_code, r.code, r.message)
            submitted[cid] = r.output.task_id
        docs = {}
        for cid, task_id in submitted.items():
            w = QwenTranscription.wait(task=task_id, wait_timeout=360)
            assert w.status_code == 200, (w.status_code, w.code, w.message)
            assert w.output.task_status == "SUCCEEDED", (cid, output_dict(w), workers[0].log(),
                                                         workers[1].log())
            docs[cid] = get_doc(w.output["result"]["transcription_url"])

    for cid, doc in docs.items():  # each task got its own file's text
        c = clip(cid)
        text = doc["transcripts"][0]["text"]
        assert error_rate(c["lang"], c["reference"], text) <= 0.35, (cid, text)

    used = set()
    for cid, task_id in submitted.items():
        rec = task_record(db, task_id)
        assert rec is not None, (cid, "task missing from the shared database", db)
        assert rec["status"] == "SUCCEEDED" and rec["attempts"] == 1, (cid, rec)
        chunks = chunks_of(db, task_id)
        assert chunks, (cid, "no progress records")
        check_chunks_once(chunks)
        producers = {c["worker"] for c in chunks}
        assert len(producers) == 1, (cid, "one task worked on by several workers", chunks)
        assert all(c["attempt"] == 1 for c in chunks), chunks
        used |= producers

    assert all(w.alive() for w in workers), [w.log() for w in workers]
    health = api.health()
    assert health["status"] == "ok"
    decoded = sum(m.get("decoded", 0) for m in (health.get("models") or {}).values())
    assert decoded == 0, ("the API process (workers: 0) decoded audio itself", health)
    if len(used) < 2:
        warnings.warn(f"all {len(submitted)} tasks went to one worker: {used}", stacklevel=1)
