"""Usage metering shared through PostgreSQL: two servers and one `voxscope worker` (separate
processes, one database, one queue). Records of both servers add up in one row per key, model and
day; a file task run by the worker is recorded there with its `usage`; a key's daily audio hours
reached on one server are refused on the other. Skipped when the PostgreSQL server binaries are
missing. Waits are bounded polls (generous on a shared machine), never timing assertions."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import FAST_ENV
from tests.files.helpers import AudioHost, WorkerProcess
from tests.files.test_postgres import pg_url  # noqa: F401 - the module's PostgreSQL cluster
from tests.operations.helpers import create_key, key_id
from tests.operations.test_usage import QUOTA, REALTIME, _recognize_silence
from tests.support import ServerProcess, sdk_at

POLL_BOUND_S = 60.0  # a server writes its records within ~0.5 s; generous for a shared machine
TIMEOUT = 120.0
CLIP = "en_ldc93s1"


@pytest.fixture(scope="module")
def host():
    h = AudioHost().start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def cluster(pg_url):  # noqa: F811 - the imported fixture
    shared = Path(tempfile.mkdtemp(prefix="voxscope-usage-"))
    common = {"database_url": pg_url, "queue_url": f"sqlite:///{shared / 'queue.db'}",
              "secret_key": "usage-test-secret", "fetch_allow_private": True}
    servers = [ServerProcess(env=FAST_ENV, config={"server": {**common, "workers": 0}})
               for _ in range(2)]
    worker = WorkerProcess(config={"server": {**common, "workers": 1}}, workdir=shared)
    started: list = []
    try:
        for s in servers:
            started.append(s.start())
        started.append(worker.start())
        yield servers
    finally:
        for p in started:
            p.stop()
        shutil.rmtree(shared, ignore_errors=True)


def _rows(server, key: str) -> list[dict]:
    resp = httpx.get(server.http + "/api/v1/usage", timeout=TIMEOUT,
                     headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    return resp.json()["output"]["usage"]


def _poll(server, key: str, done) -> list[dict]:
    """The key's rows on `server` once `done(rows)` holds (the other server writes in the
    background)."""
    deadline = time.monotonic() + POLL_BOUND_S
    while True:
        rows = _rows(server, key)
        if done(rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.25)


def _accepting(server, key: str) -> None:
    deadline = time.monotonic() + POLL_BOUND_S
    while httpx.get(server.http + "/v1/models", timeout=30,
                    headers={"Authorization": f"Bearer {key}"}).status_code != 200:
        assert time.monotonic() < deadline, "key not accepted"
        time.sleep(0.25)


def test_both_servers_add_to_one_row(cluster):
    a, b = cluster
    key = create_key(a, "shared-usage")
    for s in cluster:
        _accepting(s, key)
    assert _recognize_silence(a, key, 2.0)["header"]["event"] == "task-finished"
    assert _recognize_silence(b, key, 3.0)["header"]["event"] == "task-finished"
    _rows(b, key)  # flushes b's own pending record
    rows = _poll(a, key, lambda r: r and r[0]["requests"] == 2)
    assert len(rows) == 1, rows
    assert rows[0]["model"] == REALTIME and rows[0]["audio_seconds"] == 5, rows
    assert rows[0]["key_id"] == key_id(a, "shared-usage"), rows


def test_file_task_run_by_the_worker_is_recorded(cluster, host):
    from dashscope.audio.asr import Transcription

    a, b = cluster
    key = create_key(a, "file-usage")
    for s in cluster:
        _accepting(s, key)
    with sdk_at(a, key):
        task = Transcription.async_call(model="paraformer-v2", file_urls=[host.clip_url(CLIP)])
        assert task.status_code == 200, task
        done = Transcription.wait(task=task.output.task_id)
    assert done.output.task_status == "SUCCEEDED", done
    seconds = int(done.usage["duration"])
    _rows(a, key)  # flushes a's record of the submission
    # the task's own record is written with its end, by the worker: there once it SUCCEEDED
    (row,) = _rows(b, key)
    assert (row["model"], row["audio_seconds"], row["tasks"], row["requests"]) == \
        ("paraformer-v2", seconds, 1, 1), row


def test_daily_audio_hours_hold_across_servers(cluster):
    a, b = cluster
    limited = create_key(a, "daily-shared", "--daily-audio-hours", "0.001")  # 3.6 s
    for s in cluster:
        _accepting(s, limited)
    assert _recognize_silence(a, limited, 5.0)["header"]["event"] == "task-finished"
    _rows(a, limited)  # a's record is in the database
    refused = _recognize_silence(b, limited, 1.0)
    assert refused["header"]["event"] == "task-failed", refused
    assert refused["header"]["error_code"] == QUOTA, refused
