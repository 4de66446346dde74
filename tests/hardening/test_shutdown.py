"""SIGTERM with live sessions against a real `voxscope serve` (issue 9, item 9).

While the server drains, new requests and upgrades get 503, a session that finishes in time
finishes normally, and every session still live at the end of `shutdown_drain_s` gets its
protocol's error event (inference: task-failed; realtime: error) before a clean close frame.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import struct
import threading
import time

import httpx
import pytest
import websocket
from dashscope.audio.asr import Recognition

from tests.protocols.inference_helpers import (
    Recorder,
    new_task_id,
    run_task,
    start_recognition,
    wait_for,
)
from tests.support import ServerProcess, clip_pcm, sdk_at

DRAIN_S = 30  # long enough for the finishing session on a busy machine; live ones wait it out
TIMEOUT = 120


def _stream_until(r: Recognition, pcm: bytes, stop: threading.Event) -> None:
    """Real-time paced audio in a loop until `stop` (or until the SDK refuses more audio)."""
    start, n = time.monotonic(), 0
    while not stop.is_set():
        for i in range(0, len(pcm), 3200):
            if stop.is_set():
                return
            try:
                r.send_audio_frame(pcm[i : i + 3200])
            except Exception:  # noqa: BLE001 - the task ended (task-failed): nothing to send to
                return
            n += 1
            delay = start + n * 0.1 - time.monotonic()
            if delay > 0:
                time.sleep(delay)


@pytest.mark.timeout(300)
def test_sigterm_drains_then_ends_live_sessions_with_their_error_event():
    srv = ServerProcess(config={"server": {"shutdown_drain_s": DRAIN_S}}).start()
    stop_a = threading.Event()
    try:
        speech = clip_pcm("en_jfk_inaugural")
        with sdk_at(srv):
            # A: an inference session that is still streaming when the drain ends
            cb_a = Recorder()
            rec_a = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000,
                                callback=cb_a)
            start_recognition(rec_a, cb_a)
            sender = threading.Thread(target=_stream_until, args=(rec_a, speech, stop_a), daemon=True)
            sender.start()
            # C: an inference session that finishes during the drain
            cb_c = Recorder()
            rec_c = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000,
                                callback=cb_c)
            start_recognition(rec_c, cb_c)
            rec_c.send_audio_frame(clip_pcm("en_ldc93s1"))
            # B: a raw realtime session, idle but open
            rt = websocket.create_connection(f"{srv.ws_realtime}?model=qwen3-asr-flash-realtime",
                                             timeout=TIMEOUT)
            assert json.loads(rt.recv())["type"] == "session.created"
            rt.send(json.dumps({"type": "input_audio_buffer.append",
                                "audio": base64.b64encode(speech[:32000]).decode()}))

            # D: a raw inference connection with no task yet (SDK v2 reuses connections)
            idle = websocket.create_connection(srv.ws_inference, timeout=TIMEOUT)

            os.kill(srv.proc.pid, signal.SIGTERM)
            # draining: new requests and upgrades are refused with 503 ServiceUnavailable
            assert wait_for(lambda: httpx.get(srv.http + "/health", timeout=10).status_code == 503,
                            DRAIN_S / 2), "no 503 while draining"
            r = httpx.get(srv.http + "/health", timeout=10)
            assert r.json()["code"] == "ServiceUnavailable", r.text
            with pytest.raises(websocket.WebSocketBadStatusException) as exc:
                websocket.create_connection(srv.ws_inference, timeout=TIMEOUT)
            assert exc.value.status_code == 503
            task_id = new_task_id()
            idle.send(run_task(task_id))  # no new task on an open connection either
            ev = json.loads(idle.recv())
            assert ev["header"]["event"] == "task-failed", ev
            assert (ev["header"]["task_id"], ev["header"]["error_code"]) == (task_id,
                                                                              "ServiceUnavailable")
            idle.close()

            # a running session may still finish normally
            rec_c.stop()
            assert "complete" in cb_c.kinds() and not cb_c.errors(), cb_c.summary()

            # B gets its error event, then a close frame (1001), not a reset
            rt.settimeout(DRAIN_S + TIMEOUT)
            events = []
            while True:
                op, data = rt.recv_data(control_frame=True)
                if op == websocket.ABNF.OPCODE_CLOSE:
                    close_code = struct.unpack("!H", data[:2])[0]
                    break
                if op == websocket.ABNF.OPCODE_TEXT:
                    events.append(json.loads(data))
            errors = [e for e in events if e["type"] == "error"]
            assert errors and errors[-1]["error"]["code"] == "ServiceUnavailable", events
            assert errors[-1]["error"]["type"] == "server_error"
            assert close_code == 1001, close_code
            rt.close()

            # A gets task-failed (the SDK's on_error) with the shutdown code
            assert cb_a.done.wait(TIMEOUT), cb_a.summary()
            errs = cb_a.errors()
            assert errs and errs[0].code == "ServiceUnavailable", cb_a.summary()
            assert "shutting down" in errs[0].message
            stop_a.set()
            sender.join(TIMEOUT)
        # uvicorn re-raises the SIGTERM it handled once it is done: a clean exit reads -15
        assert srv.proc.wait(TIMEOUT) in (0, -signal.SIGTERM), srv.log()
        assert "ERROR" not in srv.log(), srv.log()
    finally:
        stop_a.set()
        srv.stop()
