"""Qwen realtime: the session idle timeout counts the client's silence, not the server's own work.

A manual commit of a long buffer takes the server a while to transcribe; a client that waits for
`transcription.completed` without sending anything must get its transcript, not `session_timeout`
(the idle rule used to fire while the commit was still being decoded, and the result was lost).
An idle client with nothing pending is still timed out.
"""

from __future__ import annotations

import os

import pytest

from tests.realtime.helpers import (
    COMPLETED,
    assert_matches,
    b64,
    chunks,
    clip_pcm,
    raw_connect,
    raw_send,
    raw_until,
    silence,
)
from tests.support import ServerProcess

WAIT_S = float(os.environ.get("VOXSCOPE_TEST_WAIT_S", "180"))
CLIPS = ["en_jfk_inaugural", "en_librispeech_1995-1837-0001", "en_ljspeech_LJ001-0001",
         "en_fleurs_000", "en_beckett"]


@pytest.fixture(scope="module")
def server():
    # 1 s: far shorter than decoding ~50 s of committed audio on any CPU this runs on.
    srv = ServerProcess(config={"server": {"idle_timeout_s": 1.0}}).start()
    yield srv
    srv.stop()


def _manual_session(server):
    ws = raw_connect(server, extra_headers=["OpenAI-Beta: realtime=v1"], timeout=WAIT_S)
    raw_until(ws, "session.created")
    raw_send(ws, {"type": "session.update",
                  "session": {"modalities": ["text"], "input_audio_format": "pcm",
                              "sample_rate": 16000, "turn_detection": None,
                              "input_audio_transcription": {"language": "en"}}})
    raw_until(ws, "session.updated", WAIT_S)
    return ws


@pytest.mark.timeout(int(WAIT_S) + 60)
def test_long_commit_is_transcribed_although_the_client_stays_silent(server):
    pcm = b"".join(clip_pcm(c) + silence(0.5) for c in CLIPS)
    assert len(pcm) / 32000 > 30  # more than one decode window
    ws = _manual_session(server)
    try:
        for piece in chunks(pcm, 64000):
            raw_send(ws, {"type": "input_audio_buffer.append", "audio": b64(piece)})
        raw_send(ws, {"type": "input_audio_buffer.commit"})
        events = raw_until(ws, COMPLETED, WAIT_S)  # nothing more is sent while we wait
    finally:
        ws.close()
    types = [e["type"] for e in events]
    assert "error" not in types, events
    assert_matches(CLIPS[0], events[-1]["transcript"].split(".")[0], limit=0.6, context=types)


@pytest.mark.timeout(int(WAIT_S) + 60)
def test_idle_client_with_nothing_pending_is_still_timed_out(server):
    ws = _manual_session(server)
    try:
        events = raw_until(ws, "error", WAIT_S)
    finally:
        ws.close()
    assert events[-1]["error"]["code"] == "session_timeout", events
