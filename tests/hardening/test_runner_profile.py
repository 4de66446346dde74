"""The file-task runner resolves a task's model with the service's one rule (profile_lookup): a task
queued under a model that the configuration no longer has, or that now names a model of another
API, fails with the same code and message the submit API gives for that model, not a message of
its own, and is not run with the wrong kind of profile.

One real `voxscope serve` with no task workers takes the tasks; it is stopped and started again on
the same data folder with a changed configuration and a worker, which then runs them."""

from __future__ import annotations

import httpx
import pytest

from tests.support import ServerProcess

TIMEOUT = 240.0  # generous: the machine is shared
FILE_API = "/api/v1/services/audio/asr/transcription"
FILE_PROFILE = {"kind": "file", "model": "whisper-base", "languages": ["en"], "hotwords": False,
                "punctuation": "always"}
SYNC_PROFILE = {**FILE_PROFILE, "kind": "sync"}
AUDIO_URL = "https://example.com/never-fetched.wav"  # the model is refused before any fetch


def _submit(srv: ServerProcess, model: str) -> httpx.Response:
    return httpx.post(srv.http + FILE_API, timeout=TIMEOUT,
                      headers={"Authorization": "Bearer k", "X-DashScope-Async": "enable"},
                      json={"model": model, "input": {"file_urls": [AUDIO_URL]}, "parameters": {}})


def _wait(srv: ServerProcess, task_id: str) -> dict:
    import time

    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        out = httpx.get(f"{srv.http}/api/v1/tasks/{task_id}", timeout=TIMEOUT,
                        headers={"Authorization": "Bearer k"}).json()["output"]
        if out["task_status"] not in ("PENDING", "RUNNING"):
            return out
        time.sleep(0.5)
    raise AssertionError(f"task {task_id} did not finish:\n{srv.log()}")


@pytest.mark.timeout(600)
def test_queued_task_of_a_changed_model_fails_as_the_submit_api_would():
    srv = ServerProcess(config={"server": {"workers": 0},
                                "profiles": {"vx-gone": dict(FILE_PROFILE),
                                             "vx-moved": dict(FILE_PROFILE)}})
    srv.start()
    try:
        ids = {}
        for model in ("vx-gone", "vx-moved"):
            resp = _submit(srv, model)
            assert resp.status_code == 200, resp.text
            ids[model] = resp.json()["output"]["task_id"]
        srv.stop()
        # vx-gone is removed, vx-moved is now a sync model; a worker runs the queued tasks
        srv.config = {"server": {"workers": 1}, "profiles": {"vx-moved": SYNC_PROFILE}}
        srv.start()
        expected = {}
        for model in ids:
            refused = _submit(srv, model).json()  # what the submit API now says for this model
            expected[model] = (refused["code"], refused["message"])
        assert expected["vx-gone"] == ("ModelNotFound", "Model not found: vx-gone"), expected
        assert expected["vx-moved"][0] == "ModelNotFound", expected
        for model, task_id in ids.items():
            out = _wait(srv, task_id)
            assert out["task_status"] == "FAILED", out
            assert (out["code"], out["message"]) == expected[model], (model, out, ids)
    finally:
        srv.stop()
