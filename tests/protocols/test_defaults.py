"""The real default timers, once: 60 s without speech, the SDK's 23 s silence timer, 60 s idle socket.

Every other test module runs a server with short timeouts; this one uses the defaults a user gets,
with the three waits running in parallel threads so the module costs about one minute.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import websocket
from dashscope.audio.asr import Recognition, RecognitionCallback

from tests.support import ServerProcess, clip, pcm16, sdk_start_waits


@pytest.fixture(scope="module")
def default_server():
    srv = ServerProcess().start()  # no timeout overrides: idle 60 s, socket idle 60 s
    yield srv
    srv.stop()


class Recorder(RecognitionCallback):
    def __init__(self) -> None:
        self.events: list[tuple[float, str, object]] = []

    def on_open(self) -> None:
        self.events.append((time.monotonic(), "open", None))

    def on_event(self, result) -> None:
        self.events.append((time.monotonic(), "event", result.get_sentence()))

    def on_complete(self) -> None:
        self.events.append((time.monotonic(), "complete", None))

    def on_error(self, result) -> None:
        self.events.append((time.monotonic(), "error", (result.status_code, result.code,
                                                         result.message)))

    def on_close(self) -> None:
        self.events.append((time.monotonic(), "close", None))

    def kinds(self) -> list[str]:
        return [k for _, k, _ in self.events]


def _no_heartbeat_times_out(out: dict) -> None:
    """Row 9 with the real 60 s rule: paced silent audio, no heartbeat -> task-failed."""
    cb = Recorder()
    r = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000, callback=cb)
    sdk_start_waits(r)  # the SDK's start race (tests/support.py)
    r.start()
    start = time.monotonic()
    chunk = bytes(3200)
    try:
        while time.monotonic() - start < 75 and "error" not in cb.kinds():
            r.send_audio_frame(chunk)
            time.sleep(0.1)
    except Exception as exc:  # the SDK raises once the task has failed
        out["send_error"] = repr(exc)
    out["cb"] = cb
    out["start"] = start


def _sdk_timer_finishes(out: dict) -> None:
    """Row 10 with the SDK's real 23 s timer: one chunk, then nothing -> finish-task, on_complete."""
    cb = Recorder()
    r = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000, callback=cb)
    sdk_start_waits(r)  # the SDK's start race (tests/support.py)
    r.start()
    start = time.monotonic()
    r.send_audio_frame(pcm16(str(clip("en_ldc93s1")["file"]), 16000)[:3200])
    while time.monotonic() - start < 35 and "complete" not in cb.kinds():
        time.sleep(0.2)
    out["cb"] = cb
    out["start"] = start
    try:
        r.stop()
        out["stop"] = "returned"
    except Exception as exc:
        out["stop"] = type(exc).__name__ + ": " + str(exc)


def _idle_socket_closed(url: str, out: dict) -> None:
    """Row 75: after a task ends, a socket with no task is closed by the server after 60 s."""
    ws = websocket.create_connection(url, header=["Authorization: Bearer k"], timeout=90)
    task_id = str(uuid.uuid4())
    ws.send(json.dumps({"header": {"action": "run-task", "task_id": task_id, "streaming": "duplex"},
                        "payload": {"model": "fun-asr-realtime", "task_group": "audio", "task": "asr",
                                    "function": "recognition", "input": {},
                                    "parameters": {"format": "pcm", "sample_rate": 16000}}}))
    assert json.loads(ws.recv())["header"]["event"] == "task-started"
    ws.send(json.dumps({"header": {"action": "finish-task", "task_id": task_id,
                                   "streaming": "duplex"}, "payload": {"input": {}}}))
    assert json.loads(ws.recv())["header"]["event"] == "task-finished"
    idle_from = time.monotonic()
    try:
        while True:
            op, _ = ws.recv_data(control_frame=False)
            if op == websocket.ABNF.OPCODE_CLOSE:
                break
    except (websocket.WebSocketConnectionClosedException, OSError):
        pass
    out["closed_after"] = time.monotonic() - idle_from


@pytest.mark.timeout(180)
def test_real_default_timers(default_server, monkeypatch):
    import dashscope

    monkeypatch.setattr(dashscope, "api_key", "k")
    monkeypatch.setattr(dashscope, "base_websocket_api_url", default_server.ws_inference)
    a: dict = {}
    b: dict = {}
    c: dict = {}
    threads = [threading.Thread(target=_no_heartbeat_times_out, args=(a,)),
               threading.Thread(target=_sdk_timer_finishes, args=(b,)),
               threading.Thread(target=_idle_socket_closed, args=(default_server.ws_inference, c))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(170)

    # 60 s without speech: task-failed surfaces as on_error(44, code, message), then on_close.
    errors = [(t, v) for t, k, v in a["cb"].events if k == "error"]
    assert errors, a["cb"].kinds()
    t_err, (status, code, message) = errors[0]
    assert status == 44 and code and message
    assert 58 <= t_err - a["start"] <= 70, t_err - a["start"]
    assert "close" in a["cb"].kinds() and "complete" not in a["cb"].kinds()

    # SDK timer after 23 s: finish-task -> task-finished -> on_complete, no error; stop() then
    # raises because the recognition has already stopped (SDK behaviour).
    kinds = b["cb"].kinds()
    assert "complete" in kinds and "error" not in kinds, kinds
    t_done = next(t for t, k, _ in b["cb"].events if k == "complete")
    assert 22 <= t_done - b["start"] <= 30, t_done - b["start"]
    assert "stopped" in b["stop"].lower(), b["stop"]

    # Idle socket closed by the server after its 60 s.
    assert 58 <= c["closed_after"] <= 70, c
    assert default_server.alive()
