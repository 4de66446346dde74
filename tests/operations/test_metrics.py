"""Metrics and health for operators against a real `voxscope serve` (issue 10, section 6).

One keyed server (max_sessions 1) sees a realtime SDK session on a real clip, a wrong model, a
capacity refusal, wrong keys and a file task; `/metrics` is then parsed with prometheus_client's
own parser. Health: a second server is sent SIGTERM while a session is live, and `/health/ready`
must say 503 `draining` during the drain while `/health/live` and `/metrics` still answer.
Nothing here asserts how fast anything is: only counts, labels, codes and states.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable

import httpx
import pytest
import websocket
from dashscope.audio.asr import Recognition
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import FAST_ENV
from tests.support import AUDIO_DIR, ServerProcess, clip, sdk_at

KEY = "metrics-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
RT_MODEL = "qwen3-asr-flash-realtime"
STREAM_MODEL = "fun-asr-realtime"
FILE_MODEL = "paraformer-v2"
TIMEOUT = float(os.environ.get("VOXSCOPE_TEST_TIMEOUT_S", "180"))


@pytest.fixture(scope="module")
def srv():
    s = ServerProcess(env=FAST_ENV, config={"server": {
        "api_keys": [KEY], "max_sessions": 1, "file_roots": [str(AUDIO_DIR.resolve())]}}).start()
    yield s
    s.stop()


def scrape(server: ServerProcess) -> dict[str, dict[tuple, float]]:
    """/metrics as {sample name: {sorted label items: value}}."""
    r = httpx.get(server.http + "/metrics", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def value(samples: dict[str, dict[tuple, float]], name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for k, v in samples.get(name, {}).items() if want <= set(k))


def wait_until(check: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def open_realtime(server: ServerProcess) -> websocket.WebSocket:
    ws = websocket.create_connection(f"{server.ws_realtime}?model={RT_MODEL}", timeout=TIMEOUT,
                                     header=[f"Authorization: Bearer {KEY}"])
    event = json.loads(ws.recv())
    assert event["type"] == "session.created", event
    return ws


@pytest.mark.timeout(600)
def test_sdk_session_feeds_delay_rtf_and_scheduler_histograms(srv):
    with sdk_at(srv, KEY):
        rec = Recognition(model=STREAM_MODEL, format="wav", sample_rate=16000, callback=None)
        result = rec.call(str(clip("en_beckett")["file"]))
    assert result.status_code == 200, result
    assert result.get_sentence(), result
    m = scrape(srv)
    assert value(m, "voxscope_first_partial_delay_seconds_count", model=STREAM_MODEL) >= 1, m
    assert value(m, "voxscope_final_delay_seconds_count", model=STREAM_MODEL) >= 1, m
    engine_models = set(srv.health()["models"])
    rtf = {dict(k)["model"] for k, v in m["voxscope_decode_rtf_count"].items() if v >= 1}
    assert rtf and rtf <= engine_models, (rtf, engine_models)
    assert value(m, "voxscope_decode_rtf_sum") > 0
    assert value(m, "voxscope_scheduler_queue_wait_seconds_count", priority="final") >= 1, m
    depths = {dict(k)["model"] for k in m["voxscope_scheduler_queue_depth"]}
    assert depths == engine_models, (depths, engine_models)
    # +Inf bucket holds every observation: the histogram is well formed
    assert value(m, "voxscope_final_delay_seconds_bucket", model=STREAM_MODEL, le="+Inf") == \
        value(m, "voxscope_final_delay_seconds_count", model=STREAM_MODEL)


@pytest.mark.timeout(300)
def test_live_sessions_and_capacity_refusals_by_code(srv):
    ws = open_realtime(srv)
    try:
        m = scrape(srv)
        assert value(m, "voxscope_sessions", protocol="realtime", model=RT_MODEL) == 1, m
        before = value(m, "voxscope_refusals_total", wire="inference", code="Throttling.Capacity")
        # max_sessions is 1 and the realtime session holds it: the SDK's task is refused
        with sdk_at(srv, KEY):
            rec = Recognition(model=STREAM_MODEL, format="pcm", sample_rate=16000, callback=None)
            result = rec.call(str(clip("en_ldc93s1")["file"]))
        assert result.status_code != 200 and result.code == "Throttling.Capacity", result
        m = scrape(srv)
        assert value(m, "voxscope_refusals_total", wire="inference",
                     code="Throttling.Capacity") == before + 1, m
    finally:
        ws.close()
    wait_until(lambda: value(scrape(srv), "voxscope_sessions", protocol="realtime",
                             model=RT_MODEL) == 0, "the realtime session to end in /metrics")


@pytest.mark.timeout(300)
def test_wrong_model_and_wrong_keys_are_counted(srv):
    before = scrape(srv)
    r = httpx.post(srv.http + "/api/v1/services/audio/asr/transcription", headers=AUTH,
                   json={"model": "no-such-model", "input": {"file_urls": ["file:///x.wav"]}},
                   timeout=TIMEOUT)
    assert r.status_code == 400 or r.status_code == 404, r.text
    assert r.json()["code"] == "ModelNotFound", r.text
    r = httpx.get(srv.http + "/api/v1/tasks", headers={"Authorization": "Bearer wrong"},
                  timeout=TIMEOUT)
    assert r.status_code == 401, r.text
    with pytest.raises(websocket.WebSocketBadStatusException) as exc:
        websocket.create_connection(srv.ws_inference, timeout=TIMEOUT,
                                    header=["Authorization: Bearer wrong"])
    assert exc.value.status_code == 401
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(f"{srv.ws_realtime}?model={RT_MODEL}", timeout=TIMEOUT)
    after = scrape(srv)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("voxscope_refusals_total", wire="rest", code="ModelNotFound") == 1, after
    assert delta("voxscope_refusals_total", wire="rest", code="InvalidApiKey") == 1, after
    assert delta("voxscope_auth_failures_total", wire="rest") == 1, after
    assert delta("voxscope_auth_failures_total", wire="inference") == 1, after
    assert delta("voxscope_auth_failures_total", wire="realtime") == 1, after


@pytest.mark.timeout(600)
def test_file_tasks_by_state(srv):
    url = f"file://{clip('en_ldc93s1')['file'].resolve()}"
    r = httpx.post(srv.http + "/api/v1/services/audio/asr/transcription",
                   headers={**AUTH, "X-DashScope-Async": "enable"},
                   json={"model": FILE_MODEL, "input": {"file_urls": [url]}}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    task_id = r.json()["output"]["task_id"]

    def status() -> str:
        return httpx.get(f"{srv.http}/api/v1/tasks/{task_id}", headers=AUTH,
                         timeout=TIMEOUT).json()["output"]["task_status"]

    wait_until(lambda: status() in ("SUCCEEDED", "FAILED"), "the file task to end")
    assert status() == "SUCCEEDED"
    m = scrape(srv)
    assert value(m, "voxscope_file_tasks", state="SUCCEEDED", model=FILE_MODEL) >= 1, m
    assert value(m, "voxscope_file_tasks", state="RUNNING") == 0, m


@pytest.mark.timeout(300)
def test_health_says_live_ready_and_draining():
    s = ServerProcess(config={"server": {"shutdown_drain_s": 60}}).start()
    try:
        r = httpx.get(s.http + "/health/ready", timeout=TIMEOUT)
        assert r.status_code == 200 and r.json() == {"status": "ready", "ready": True}, r.text
        assert httpx.get(s.http + "/health/live", timeout=TIMEOUT).status_code == 200
        health = httpx.get(s.http + "/health", timeout=TIMEOUT).json()
        assert (health["status"], health["ready"]) == ("ok", True), health
        ws = websocket.create_connection(f"{s.ws_realtime}?model={RT_MODEL}", timeout=TIMEOUT)
        assert json.loads(ws.recv())["type"] == "session.created"
        assert s.proc is not None
        os.kill(s.proc.pid, signal.SIGTERM)  # the live session holds the drain open

        def draining() -> bool:
            return httpx.get(s.http + "/health/ready", timeout=TIMEOUT).status_code == 503

        wait_until(draining, "/health/ready to answer 503 while draining")
        r = httpx.get(s.http + "/health/ready", timeout=TIMEOUT)
        assert r.json() == {"status": "draining", "ready": False}, r.text
        r = httpx.get(s.http + "/health", timeout=TIMEOUT)
        assert r.status_code == 503, r.text
        assert (r.json()["status"], r.json()["code"]) == ("draining", "ServiceUnavailable"), r.text
        assert httpx.get(s.http + "/health/live", timeout=TIMEOUT).status_code == 200
        m = scrape(s)
        assert value(m, "voxscope_sessions", protocol="realtime", model=RT_MODEL) == 1, m
        # new work is still refused, and counted
        r = httpx.get(s.http + "/api/v1/tasks", timeout=TIMEOUT)
        assert r.status_code == 503
        assert value(scrape(s), "voxscope_refusals_total", code="ServiceUnavailable") >= 1
        ws.close()  # the drain ends with the last session, then the process exits
        assert s.proc.wait(timeout=TIMEOUT) in (0, -signal.SIGTERM), s.log()
    finally:
        s.stop()
