"""A PENDING task whose queue message is gone (a worker died between taking it and claiming the
task, or the queue was reset) is not lost: with the queue empty, the reaper requeues it."""

from __future__ import annotations

import pytest
from dashscope.audio.qwen_asr import QwenTranscription

from tests.files.helpers import QWEN, output_dict
from tests.support import ServerProcess, sdk_at


@pytest.mark.timeout(300)
def test_pending_task_without_queue_message_completes(audio_host):
    srv = ServerProcess(config={"server": {"fetch_allow_private": True, "workers": 0,
                                           "task_lease_s": 3}}).start()
    try:
        with sdk_at(srv):
            r = QwenTranscription.async_call(model=QWEN,
                                             file_url=audio_host.clip_url("en_beckett"))
            assert r.status_code == 200, (r.code, r.message)
        srv.stop()
        data = srv.workdir / "data"
        queue_files = list(data.glob("queue.db*"))
        assert queue_files, list(data.iterdir())
        for f in queue_files:  # the message is gone; the task row stays PENDING
            f.unlink()
        srv.config["server"]["workers"] = 1
        srv.start()
        with sdk_at(srv):
            w = QwenTranscription.wait(task=r.output.task_id, wait_timeout=120)
        assert w.status_code == 200 and w.output.task_status == "SUCCEEDED", output_dict(w)
    finally:
        srv.stop()
