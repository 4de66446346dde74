"""Matrix rows 36-37 (seed 002's raw `websocket-client` sample) and the inputs the SDK never sends.

Events after session.finish, a client that vanishes mid-utterance, an unknown model, binary and
non-JSON frames. Each must end in an `error` event or a clean close, and the server must go on
serving (a following good SDK session).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import pytest
import websocket

from tests.realtime.helpers import (
    COMPLETED,
    FINISHED,
    KEY,
    MODEL,
    STARTED,
    TEXT,
    assert_matches,
    b64,
    check_created,
    check_manual_flow,
    check_vad_flow,
    chunks,
    clip_pcm,
    good_session,
    joined,
    raw_connect,
    raw_drain_until_close,
    raw_recv,
    raw_send,
    raw_until,
    rt_url,
    silence,
)

ZH = "zh_paddlespeech_zh"
EN = "en_ldc93s1"
EN_LONG = "en_beckett"


# -- rows 36/37: the seed's raw sample ---------------------------------------------------------------
def _seed_session(server, vad: bool, pcm: bytes) -> tuple[list[dict], list, bool | None]:
    """Seed 002's Python websocket-client flow; returns (events, on_close calls, run_forever's
    result). Fails unless the server closes the socket after session.finished."""
    url = f"{rt_url(server)}?model={MODEL}"
    headers = ["Authorization: Bearer " + KEY, "OpenAI-Beta: realtime=v1"]
    turn_detection = {"type": "server_vad", "threshold": 0.0, "silence_duration_ms": 400} if vad else None
    event = {"event_id": "event_123", "type": "session.update",
             "session": {"modalities": ["text"], "input_audio_format": "pcm", "sample_rate": 16000,
                         "input_audio_transcription": {"language": "zh"},
                         "turn_detection": turn_detection}}
    events: list[dict] = []
    closes: list = []
    updated, finished = threading.Event(), threading.Event()

    def on_open(ws):
        ws.send(json.dumps(event))

    def on_message(ws, message):
        data = json.loads(message)
        events.append(data)
        if data.get("type") == "session.updated":
            updated.set()
        if data.get("type") == FINISHED:
            finished.set()  # the seed would ws.close() here; we let the server close first

    def on_close(ws, code, msg):
        closes.append((code, msg))

    ws = websocket.WebSocketApp(url, header=headers, on_open=on_open, on_message=on_message,
                                on_close=on_close)
    result: list = []
    thread = threading.Thread(target=lambda: result.append(ws.run_forever()), daemon=True)
    thread.start()
    try:
        assert updated.wait(10), events  # the seed sleeps 3 s for this
        for piece in chunks(pcm, 3200):  # ~0.1 s of PCM16/16 kHz every 0.1 s
            ws.send(json.dumps({"event_id": f"event_{int(time.time() * 1000)}",
                                "type": "input_audio_buffer.append", "audio": b64(piece)}))
            time.sleep(0.1)
        if not vad:
            ws.send(json.dumps({"event_id": "event_789", "type": "input_audio_buffer.commit"}))
        ws.send(json.dumps({"event_id": "event_987", "type": "session.finish"}))
        # generous: on a busy machine the last items may still be decoding; order is checked below
        assert finished.wait(90), [e.get("type") for e in events]
        thread.join(10)  # run_forever returns once the server has closed the socket
        assert not thread.is_alive(), "the server did not close the socket after session.finished"
    finally:
        ws.close()
        thread.join(5)
    return events, closes, result[0] if result else None


@pytest.mark.timeout(150)
def test_row36_seed_raw_vad(server):
    events, closes, errored = _seed_session(server, True, silence(0.5) + clip_pcm(ZH) + silence(1.0))
    check_created(events[0])
    # silence_duration_ms 400 may split the clip at its pause: one or more utterances.
    items = check_vad_flow(events, None)
    assert_matches(ZH, "".join(items), context=items)
    assert events[1]["session"]["turn_detection"]["silence_duration_ms"] == 400, events[1]
    assert isinstance(events[-1].get("transcript", ""), str), events[-1]
    assert closes and closes[0][0] == 1000, closes  # closed by the server, normally
    assert errored is False  # run_forever: a close frame, not a dropped socket


@pytest.mark.timeout(150)
def test_row37_seed_raw_manual_commit(server):
    events, closes, errored = _seed_session(server, False, clip_pcm(ZH))
    (text,) = check_manual_flow(events, 1)
    assert_matches(ZH, text)
    assert closes and closes[0][0] == 1000, closes
    assert errored is False


# -- events after session.finish -------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_events_after_session_finish(server):
    ws = raw_connect(server)
    try:
        raw_until(ws, "session.created")
        raw_send(ws, {"event_id": "u1", "type": "session.update",
                      "session": {"turn_detection": None, "input_audio_transcription": {"language": "en"}}})
        for i, piece in enumerate(chunks(clip_pcm(EN), 32000)):
            raw_send(ws, {"event_id": f"a{i}", "type": "input_audio_buffer.append", "audio": b64(piece)})
        raw_send(ws, {"event_id": "c1", "type": "input_audio_buffer.commit"})
        raw_send(ws, {"event_id": "f1", "type": "session.finish"})
        # Straight after the finish, before anything came back: more events.
        raw_send(ws, {"event_id": "late1", "type": "input_audio_buffer.append", "audio": b64(bytes(3200))})
        raw_send(ws, {"event_id": "late2", "type": "input_audio_buffer.commit"})
        raw_send(ws, {"event_id": "late3", "type": "session.finish"})
        raw_send(ws, {"event_id": "late4", "type": "no.such.event"})
        events, code = raw_drain_until_close(ws, 20)
        types = [e["type"] for e in events]
        assert types.count(FINISHED) == 1, types
        fin = types.index(FINISHED)
        assert fin == len(types) - 1, types  # nothing after session.finished
        assert code == 1000, code
        for e in events:
            if e["type"] == "error":  # only client errors, never a server failure
                assert e["error"]["type"] == "invalid_request_error", e
        assert_matches(EN, joined(events, "en"))
        # Sending on the closed connection is the client's problem; the server is unaffected.
        for _ in range(3):
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.send(json.dumps({"event_id": "later", "type": "input_audio_buffer.commit"}))
            time.sleep(0.05)
    finally:
        ws.close()
    assert server.alive(), server.log()
    good_session(server)


# -- a client that vanishes mid-utterance ----------------------------------------------------------
def _settled(server, baseline: int, timeout: float = 6.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        h = server.health()
        busy = sum(m["queue"] for m in h["models"].values())
        if h["active_tasks"] == 0 and h["threads"] <= baseline and busy == 0:
            return h
        if time.monotonic() > deadline:
            raise AssertionError(f"resources not freed within {timeout} s: {h} (threads baseline {baseline})")
        time.sleep(0.2)


def _open_utterance(server, vad: bool) -> websocket.WebSocket:
    ws = raw_connect(server)
    raw_until(ws, "session.created")
    raw_send(ws, {"event_id": "u1", "type": "session.update",
                  "session": {"turn_detection": {"type": "server_vad"} if vad else None,
                              "input_audio_transcription": {"language": "en"}}})
    raw_until(ws, "session.updated")
    pcm = clip_pcm(EN_LONG)
    if vad:  # 4 s of speech at twice real time: an utterance is open and being previewed
        for piece in chunks(pcm[: 4 * 32000], 3200):
            raw_send(ws, {"type": "input_audio_buffer.append", "audio": b64(piece)})
            time.sleep(0.05)
        raw_until(ws, STARTED, 10)
        raw_until(ws, TEXT, 10)
    else:  # the whole clip committed: its transcription is running
        for piece in chunks(pcm, 32000):
            raw_send(ws, {"type": "input_audio_buffer.append", "audio": b64(piece)})
        raw_send(ws, {"type": "input_audio_buffer.commit"})
        raw_until(ws, "input_audio_buffer.committed", 10)
    return ws


@pytest.mark.timeout(90)
@pytest.mark.parametrize("vad", [True, False], ids=["vad_open_utterance", "manual_commit_in_flight"])
def test_client_vanishes_mid_utterance(server, vad):
    # The same flow once, ended properly, warms every pool this path uses; that is the baseline.
    ws = _open_utterance(server, vad)
    raw_send(ws, {"type": "session.finish"})
    raw_drain_until_close(ws, 30)
    ws.close()
    baseline = _settled(server, 10**6, 15)["threads"]

    ws = _open_utterance(server, vad)
    assert server.health()["active_tasks"] == 1
    ws.sock.shutdown(socket.SHUT_RDWR)  # no close frame: the TCP connection just goes away
    ws.sock.close()
    _settled(server, baseline)
    assert server.alive(), server.log()
    good_session(server)


# -- unknown model ------------------------------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize("model", ["no-such-model", "fun-asr-realtime", None],
                         ids=["unknown", "other_protocol_model", "no_model_param"])
def test_unknown_model(server, model):
    ws = raw_connect(server, model=model)
    try:
        events, code = raw_drain_until_close(ws, 10)
    finally:
        ws.close()
    assert [e["type"] for e in events] == ["error"], events  # no session.created
    err = events[0]["error"]
    assert err["type"] == "invalid_request_error", err
    assert isinstance(err["code"], str) and err["code"], err
    if model:
        assert model in err["message"], err  # names the model
    assert code is not None, code
    assert server.health()["active_tasks"] == 0
    good_session(server)


# -- frames the SDK never sends ------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_binary_and_non_json_frames(server):
    ws = raw_connect(server)
    try:
        raw_until(ws, "session.created")
        ws.send_binary(clip_pcm(EN)[:3200])
        ev = raw_recv(ws, 10)
        assert ev["type"] == "error" and ev["error"]["type"] == "invalid_request_error", ev
        for bad in ("{not json", "[1, 2]", '"text"'):
            ws.send(bad)
            ev = raw_recv(ws, 10)
            assert ev["type"] == "error" and ev["error"]["type"] == "invalid_request_error", (bad, ev)
            assert isinstance(ev["error"]["code"], str) and ev["error"]["message"], ev
        # still usable
        raw_send(ws, {"event_id": "u1", "type": "session.update",
                      "session": {"turn_detection": None, "input_audio_transcription": {"language": "en"}}})
        raw_until(ws, "session.updated")
        raw_send(ws, {"event_id": "a1", "type": "input_audio_buffer.append", "audio": b64(clip_pcm(EN))})
        raw_send(ws, {"event_id": "c1", "type": "input_audio_buffer.commit"})
        done = raw_until(ws, COMPLETED, 30)[-1]
        assert_matches(EN, done["transcript"])
        raw_send(ws, {"event_id": "f1", "type": "session.finish"})
        events, code = raw_drain_until_close(ws, 20)
        assert events[-1]["type"] == FINISHED and code == 1000, (events, code)
    finally:
        ws.close()
