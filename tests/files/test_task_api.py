"""The task API: matrix rows 50 (unknown id), 51 (cancel a PENDING task), 52 (list), and accepted
tasks surviving a restart while still PENDING (row 55's durable-queue half).

The module's server starts with `workers: 0` (API only, nothing consumes the queue), so submitted
tasks provably stay PENDING. It is then restarted on the same data folder with one worker: the
pending tasks complete without being resubmitted, the canceled one stays CANCELED and is never run.
"""

from __future__ import annotations

import time

import pytest
from dashscope.audio.asr import Transcription
from dashscope.audio.qwen_asr import QwenTranscription

from tests.files.helpers import (
    PARAFORMER,
    QWEN,
    chunks_of,
    duration_s,
    get_doc,
    output_dict,
)
from tests.support import ServerProcess, clip, error_rate, sdk_at

STATE: dict[str, str] = {}


@pytest.fixture(scope="module")
def srv():
    s = ServerProcess(config={"server": {"fetch_allow_private": True, "workers": 0}}).start()
    yield s
    s.stop()


def _status(cls, task_id: str) -> str:
    f = cls.fetch(task=task_id)
    assert f.status_code == 200, (f.status_code, f.code, f.message)
    assert f.output.task_id == task_id
    return f.output.task_status


def test_row51_cancel_pending_task(sdk, audio_host):
    r = QwenTranscription.async_call(model=QWEN, file_url=audio_host.clip_url("en_ldc93s1"))
    assert r.status_code == 200, (r.status_code, r.code, r.message)
    task_id = r.output.task_id
    assert r.output.task_status == "PENDING"
    time.sleep(1.5)
    assert _status(QwenTranscription, task_id) == "PENDING"  # no worker: nothing takes it

    c = QwenTranscription.cancel(task_id)
    assert c.status_code == 200, (c.status_code, c.code, c.message)
    assert c.request_id
    assert _status(QwenTranscription, task_id) == "CANCELED"
    w = QwenTranscription.wait(task=task_id, wait_timeout=30)
    assert w.status_code == 200 and w.output.task_status == "CANCELED", output_dict(w)
    STATE["canceled"] = task_id


def test_row51_cancel_with_transcription_class(sdk, audio_host):
    t = Transcription.async_call(model=PARAFORMER, file_urls=[audio_host.clip_url("en_ldc93s1")])
    assert t.status_code == 200, (t.status_code, t.code, t.message)
    c = Transcription.cancel(t)
    assert c.status_code == 200, (c.status_code, c.code, c.message)
    w = Transcription.wait(task=t.output.task_id, wait_timeout=30)
    assert w.status_code == 200 and w.output.task_status == "CANCELED", output_dict(w)
    STATE["canceled2"] = t.output.task_id


def test_cancel_unknown_task_is_not_a_server_error(sdk, srv):
    c = Transcription.cancel("no-such-task")
    assert c.status_code < 500, (c.status_code, c.code, c.message)
    if c.status_code != 200:
        assert c.code and c.message, c
    assert srv.alive()


def test_row50_unknown_task_id(sdk):
    f = Transcription.fetch("no-such-task")
    assert f.status_code == 200, (f.status_code, f.code, f.message)
    assert f.output.task_status == "UNKNOWN", output_dict(f)
    assert f.output.task_id == "no-such-task"
    q = QwenTranscription.wait(task="no-such-task", wait_timeout=20)
    assert q.status_code == 200 and q.output.task_status == "UNKNOWN", output_dict(q)


@pytest.mark.timeout(300)
def test_pending_tasks_survive_restart_and_complete(srv, audio_host):
    """Row 55 for queued work: submit on an API-only server, stop it (SIGTERM), start it again
    with a worker; `wait()` on the same ids gives SUCCEEDED, the canceled task is never run."""
    with sdk_at(srv):
        q = QwenTranscription.async_call(model=QWEN, file_url=audio_host.clip_url("en_beckett"))
        t = Transcription.async_call(model=PARAFORMER,
                                     file_urls=[audio_host.clip_url("zh_paddlespeech_zh")])
        assert q.status_code == 200 and t.status_code == 200, (q.message, t.message)
    srv.stop()
    srv.config = {"server": {"fetch_allow_private": True, "workers": 1}}
    srv.start()
    with sdk_at(srv):
        wq = QwenTranscription.wait(task=q.output.task_id, wait_timeout=240)
        assert wq.status_code == 200 and wq.output.task_status == "SUCCEEDED", output_dict(wq)
        doc = get_doc(wq.output["result"]["transcription_url"])
        text = doc["transcripts"][0]["text"]
        assert error_rate("en", clip("en_beckett")["reference"], text) <= 0.25, text

        wt = Transcription.wait(task=t.output.task_id, wait_timeout=240)
        assert wt.status_code == 200 and wt.output.task_status == "SUCCEEDED", output_dict(wt)
        res = wt.output["results"][0]
        assert res["subtask_status"] == "SUCCEEDED", res
        doc = get_doc(res["transcription_url"])
        text = doc["transcripts"][0]["text"]
        assert error_rate("zh", clip("zh_paddlespeech_zh")["reference"], text) <= 0.2, text
        assert doc["properties"]["original_duration_in_milliseconds"] == pytest.approx(
            duration_s("zh_paddlespeech_zh") * 1000, abs=150)

        for key in ("canceled", "canceled2"):
            if key in STATE:
                assert _status(QwenTranscription, STATE[key]) == "CANCELED"
                assert chunks_of(srv.workdir / "data" / "voxscope.db", STATE[key]) == []
    STATE["succeeded"] = q.output.task_id
    STATE["succeeded2"] = t.output.task_id


def test_row52_list(sdk):
    lst = Transcription.list(page_size=5)
    assert lst.status_code == 200, (lst.status_code, lst.code, lst.message)
    out = output_dict(lst)
    for key in ("tasks", "page_no", "page_size", "total"):
        assert key in out, (key, out)
    assert isinstance(out["tasks"], list)
    assert out["page_no"] == 1 and out["page_size"] == 5, out
    assert isinstance(out["total"], int) and out["total"] >= len(STATE), out
    assert 0 < len(out["tasks"]) <= 5, out
    for task in out["tasks"]:
        assert task.get("task_id") and task.get("task_status"), task

    everything = output_dict(Transcription.list(page_size=100))
    ids = {t["task_id"] for t in everything["tasks"]}
    assert set(STATE.values()) <= ids, (STATE, ids)
    assert everything["total"] == len(everything["tasks"]), everything

    page1 = output_dict(Transcription.list(page_no=1, page_size=2))
    page2 = output_dict(Transcription.list(page_no=2, page_size=2))
    assert page2["page_no"] == 2, page2
    assert not {t["task_id"] for t in page1["tasks"]} & {t["task_id"] for t in page2["tasks"]}

    done = Transcription.list(status="SUCCEEDED", page_size=100)
    assert done.status_code == 200, (done.code, done.message)
    done_out = output_dict(done)
    assert all(t["task_status"] == "SUCCEEDED" for t in done_out["tasks"]), done_out
    done_ids = {t["task_id"] for t in done_out["tasks"]}
    for key in ("succeeded", "succeeded2"):
        if key in STATE:
            assert STATE[key] in done_ids, (key, done_out)
    canceled = output_dict(Transcription.list(status="CANCELED", page_size=100))
    assert all(t["task_status"] == "CANCELED" for t in canceled["tasks"]), canceled
    if "canceled" in STATE:
        assert STATE["canceled"] in {t["task_id"] for t in canceled["tasks"]}


def test_cancel_finished_task_keeps_its_result(sdk):
    if "succeeded" not in STATE:
        pytest.skip("needs the task of test_pending_tasks_survive_restart_and_complete")
    c = QwenTranscription.cancel(STATE["succeeded"])
    assert c.status_code < 500, (c.status_code, c.code, c.message)
    if c.status_code != 200:
        assert c.code and c.message
    f = QwenTranscription.fetch(task=STATE["succeeded"])
    assert f.output.task_status == "SUCCEEDED", output_dict(f)
