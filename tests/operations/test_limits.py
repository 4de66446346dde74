"""Per-key limits in one process, against a real server with keys made by `voxscope keys create`:
a key over its sessions gets `task-failed` / a realtime `error` with Throttling.AllocationQuota
while its running session and other keys go on; over its requests per second it gets HTTP 429
Throttling.RateQuota (DashScope envelope) or OpenAI's 429 on /v1; over its queued file tasks a
429 Throttling.AllocationQuota. Assertions are on codes and order, never on timings."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import websocket

from tests.conftest import FAST_ENV
from tests.operations.helpers import HeldTask, create_key, run_task, wait_keyed
from tests.support import ServerProcess

QUOTA = "Throttling.AllocationQuota"
RATE = "Throttling.RateQuota"


@pytest.fixture(scope="module")
def srv():
    # workers: 0 keeps submitted file tasks PENDING, so the queued-task limit is deterministic
    server = ServerProcess(env=FAST_ENV, config={"server": {"max_sessions": 6, "workers": 0}})
    server.start()
    create_key(server, "first")
    wait_keyed(server)
    yield server
    server.stop()




def test_session_limit_refuses_only_the_extra_session(srv):
    limited, other = create_key(srv, "one-session", "--max-sessions", "1"), create_key(srv, "free")
    held = HeldTask.open(srv.ws_inference, limited)
    try:
        ws, refused = run_task(srv.ws_inference, limited)
        ws.close()
        assert refused["header"]["event"] == "task-failed", refused
        assert refused["header"]["error_code"] == QUOTA, refused
        rt = websocket.create_connection(f"{srv.ws_realtime}?model=qwen3-asr-flash-realtime",
                                         header=[f"Authorization: Bearer {limited}"], timeout=60)
        event = json.loads(rt.recv())
        rt.close()
        assert event["type"] == "error" and event["error"]["code"] == QUOTA, event
        free = HeldTask.open(srv.ws_inference, other)  # another key is not affected
        assert free.finish() == "task-finished"
    finally:
        assert held.finish() == "task-finished"  # the running session was never harmed
    again = HeldTask.open(srv.ws_inference, limited)  # its session ended: the key may start another
    assert again.finish() == "task-finished"


def _burst(url: str, key: str, n: int = 30) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: client.get(url, headers=headers), range(n)))


def test_requests_per_second(srv):
    slow, other = create_key(srv, "rps", "--rps", "2"), create_key(srv, "rps-free")
    answers = _burst(f"{srv.http}/api/v1/tasks/no-such-task", slow)
    refused = [r for r in answers if r.status_code == 429]
    assert refused, [r.status_code for r in answers]
    assert all(r.json()["code"] == RATE and r.json()["request_id"] for r in refused)
    assert all(r.status_code != 429 for r in _burst(f"{srv.http}/api/v1/tasks/no-such-task", other))
    openai = [r for r in _burst(f"{srv.http}/v1/models", slow) if r.status_code == 429]
    assert openai, "no OpenAI-shaped refusal"
    assert openai[0].json()["error"]["code"] == "rate_limit_exceeded", openai[0].json()
    time.sleep(1.5)  # a one-second window: the key recovers once it stops
    assert httpx.get(f"{srv.http}/v1/models", headers={"Authorization": f"Bearer {slow}"},
                     timeout=60).status_code == 200


def test_queued_tasks(srv):
    key = create_key(srv, "queue", "--max-queued-tasks", "1")

    def submit() -> httpx.Response:
        return httpx.post(f"{srv.http}/api/v1/services/audio/asr/transcription",
                          headers={"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable"},
                          json={"model": "paraformer-v2",
                                "input": {"file_urls": ["https://example.invalid/a.wav"]}},
                          timeout=60)

    first = submit()
    assert first.status_code == 200, first.text
    second = submit()
    assert second.status_code == 429 and second.json()["code"] == QUOTA, second.text
