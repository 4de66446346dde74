"""Inference WebSocket with a raw `websocket-client`: inputs the SDK never produces, matrix row 75.

Audio before run-task, a second run-task while one runs, malformed text frames, a client that
vanishes mid-stream, the keep-alive results the SDKs filter, and connection reuse (row 75). Every
bad input must come back as a clear task-failed, and the server must go on serving.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.protocols.inference_helpers import (
    assert_matches,
    check_task_failed,
    finish_task,
    good_call,
    new_task_id,
    raw_connect,
    recv_event,
    recv_until_end,
    run_task,
    text_of,
    wait_closed,
    wait_for,
)
from tests.support import clip_pcm, silence_pcm

EN = "en_ldc93s1"


def _stream(ws, pcm: bytes, chunk: int = 12800, pace: float | None = None) -> None:
    for i in range(0, len(pcm), chunk):
        ws.send_binary(pcm[i : i + chunk])
        if pace:
            time.sleep(pace)


def _check_results(events: list[dict], task_id: str) -> None:
    assert events[-1]["header"]["event"] == "task-finished", events[-1]
    assert events[-1]["payload"].get("output") == {}, events[-1]
    for ev in events:
        assert ev["header"]["task_id"] == task_id, ev
        assert ev["header"]["event"] in ("result-generated", "task-finished"), ev
    assert_matches(EN, text_of(events), str(events))


# -- audio before run-task -------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_audio_before_run_task(dashscope_at, server):
    ws = raw_connect(server.ws_inference)
    ws.send_binary(clip_pcm(EN)[:3200])
    check_task_failed(recv_event(ws), "", "run-task")
    assert wait_closed(ws, 5) is not None  # a failed connection is closed
    good_call()


# -- a second run-task while one runs ------------------------------------------------------------
@pytest.mark.timeout(30)
def test_second_run_task_refused_first_continues(dashscope_at, server):
    pcm = clip_pcm(EN)
    ws = raw_connect(server.ws_inference)
    first, second = new_task_id(), new_task_id()
    ws.send(run_task(first))
    assert recv_event(ws)["header"] == {"task_id": first, "event": "task-started", "attributes": {}}
    half = len(pcm) // 2 // 3200 * 3200
    _stream(ws, pcm[:half])
    ws.send(run_task(second))
    events = []
    while True:  # results of the first task may arrive before the refusal
        ev = recv_event(ws)
        if ev["header"]["task_id"] == second:
            check_task_failed(ev, second, "already", "running")
            break
        events.append(ev)
        assert ev["header"]["event"] == "result-generated", ev
    _stream(ws, pcm[half:])
    ws.send(finish_task(first))
    events += recv_until_end(ws)
    _check_results(events, first)
    ws.close()
    good_call()


# -- malformed text frames -------------------------------------------------------------------------
MALFORMED = {
    "not-json": "this is not json",
    "truncated-json": '{"header": {"action": "run-task", "task_id": "x"',
    "json-array": "[1, 2, 3]",
    "no-header": '{"payload": {"model": "fun-asr-realtime"}}',
    "unknown-action": '{"header": {"action": "dance", "task_id": "t1", "streaming": "duplex"}, '
                      '"payload": {}}',
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("frame", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_text_frame_before_task(dashscope_at, server, frame):
    ws = raw_connect(server.ws_inference)
    ws.send(frame)
    ev = recv_event(ws)
    task_id = "t1" if "dance" in frame else ""
    check_task_failed(ev, task_id)
    assert wait_closed(ws, 5) is not None
    good_call()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("frame", ["this is not json", "[1, 2, 3]"], ids=["not-json", "json-array"])
def test_malformed_text_frame_during_task(dashscope_at, server, frame):
    # task-failed at any point of a task names that task (WS §8.4: header.task_id becomes the
    # request_id; SDK v2 drops events of other task ids).
    ws = raw_connect(server.ws_inference)
    task_id = new_task_id()
    ws.send(run_task(task_id))
    assert recv_event(ws)["header"]["event"] == "task-started"
    _stream(ws, clip_pcm(EN)[:12800])
    ws.send(frame)
    while True:
        ev = recv_event(ws)
        if ev["header"]["event"] != "result-generated":
            break
    check_task_failed(ev, task_id)
    assert wait_closed(ws, 5) is not None
    good_call()


# -- a client that disconnects mid-stream ----------------------------------------------------------
def _opus(pcm: bytes) -> bytes:
    from tests.audio.media import encode
    from tests.protocols.inference_helpers import as_float

    return encode(as_float(pcm), 16000, "libopus", "ogg", container_options={"page_duration": "100000"})


@pytest.mark.timeout(60)
def test_client_disconnect_mid_stream_frees_resources(dashscope_at, server):
    pcm = clip_pcm(EN)
    # Warm-up: the same kind of task (Ogg/Opus: a decoder thread per task), run to the end.
    ws = raw_connect(server.ws_inference)
    task_id = new_task_id()
    ws.send(run_task(task_id, fmt="opus"))
    assert recv_event(ws)["header"]["event"] == "task-started"
    _stream(ws, _opus(pcm), chunk=2000)
    ws.send(finish_task(task_id))
    _check_results(recv_until_end(ws), task_id)
    ws.close()
    assert wait_for(lambda: server.health()["active_tasks"] == 0, 5), server.health()
    time.sleep(0.5)
    baseline = server.health()["threads"]

    # Vanish mid-stream, while speech is being recognised.
    ws = raw_connect(server.ws_inference)
    task_id = new_task_id()
    ws.send(run_task(task_id, fmt="opus"))
    assert recv_event(ws)["header"]["event"] == "task-started"
    _stream(ws, _opus(pcm + pcm)[:20000], chunk=2000, pace=0.05)
    busy = server.health()
    assert busy["active_tasks"] == 1 and busy["threads"] > baseline, (baseline, busy)
    ws.shutdown()  # no finish-task, no close frame: the client just disappears

    assert wait_for(lambda: server.health()["active_tasks"] == 0, 5), server.health()
    assert wait_for(lambda: server.health()["threads"] <= baseline, 5), (baseline, server.health())
    assert server.alive()
    good_call()


# -- keep-alive results: the shape the SDKs filter on ------------------------------------------------
@pytest.mark.timeout(30)
def test_heartbeat_results_are_flagged(dashscope_at, server):
    # The SDKs drop results with heartbeat: true (WS §9.1); real results never carry it, and
    # keep-alives carry no text and no end. The module's server beats every 2 s of silence.
    ws = raw_connect(server.ws_inference)
    task_id = new_task_id()
    ws.send(run_task(task_id, heartbeat=True))
    assert recv_event(ws)["header"]["event"] == "task-started"
    _stream(ws, silence_pcm(5.0), chunk=3200, pace=0.1)
    _stream(ws, clip_pcm(EN), chunk=3200, pace=None)
    ws.send(finish_task(task_id))
    events = recv_until_end(ws)
    beats = [ev for ev in events if ev["header"]["event"] == "result-generated"
             and ev["payload"]["output"]["sentence"].get("heartbeat") is True]
    assert beats, events
    for ev in beats:
        s = ev["payload"]["output"]["sentence"]
        assert s["text"] == "" and s["end_time"] is None and ev["payload"].get("usage") is None, ev
    _check_results([ev for ev in events if ev not in beats], task_id)
    ws.close()


# -- row 75: a second run-task on the same socket ------------------------------------------------------
@pytest.mark.timeout(60)
def test_row75_second_task_on_same_socket_then_idle_close(dashscope_at, server):
    pcm = clip_pcm(EN)
    ws = raw_connect(server.ws_inference, timeout=30)
    first = str(uuid.uuid4())  # the Java flow: hyphenated UUIDs
    ws.send(run_task(first))
    assert recv_event(ws)["header"]["event"] == "task-started"
    _stream(ws, pcm)
    ws.send(finish_task(first))
    _check_results(recv_until_end(ws), first)

    time.sleep(1.2)  # the socket stays open after task-finished
    second = str(uuid.uuid4())
    ws.send(run_task(second, pre_task_id=first))
    started = recv_event(ws)
    assert started["header"]["event"] == "task-started" and started["header"]["task_id"] == second
    _stream(ws, pcm)
    ws.send(finish_task(second))
    _check_results(recv_until_end(ws), second)

    # An idle socket (no task) is closed by the server: 60 s by default, 8 s on this server.
    closed_after = wait_closed(ws, 20)
    assert closed_after is not None and 6 <= closed_after <= 14, closed_after
    good_call()

