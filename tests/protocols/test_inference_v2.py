"""Inference WebSocket with the SDK's v2 client (`dashscope.Client`): matrix rows 73 and 74.

Row 73: `client.audio.asr.recognize(...)` as a context manager, audio, `stop()`, then `results()`.
Row 74: two recognitions back to back on one shared `client.ws_connection(...)` socket.
"""

from __future__ import annotations

import time

import dashscope
import pytest

from tests.protocols.inference_helpers import HEX32, assert_matches
from tests.support import clip_pcm, silence_pcm

EN = "en_ldc93s1"
pytestmark = [pytest.mark.filterwarnings("ignore:dashscope 2.0 audio API is a preview:FutureWarning"),
              pytest.mark.filterwarnings("ignore:no workspace configured:UserWarning")]


def _check_results(results: list, context: str = "") -> str:
    assert results, context
    partials = [r for r in results if not r.is_sentence_end()]
    finals = [r for r in results if r.is_sentence_end()]
    assert partials and finals, context
    assert results.index(partials[0]) < results.index(finals[0]), context
    for r in results:
        s = r.get_sentence()
        assert s is not None and s.get("heartbeat") is not True and s["text"], context
    for r in partials:
        assert r.get_sentence()["end_time"] is None and r.get_usage() is None, context
    for r in finals:
        usage = r.get_usage()
        assert usage == {"duration": usage["duration"]} and isinstance(usage["duration"], int), context
    text = "".join(r.get_sentence()["text"] for r in finals)
    assert_matches(EN, text, context)
    return text


@pytest.mark.timeout(60)
def test_row73_v2_recognize_results(server):
    client = dashscope.Client(api_key="test-key")
    pcm = clip_pcm(EN)
    with client.audio.asr.recognize(model="fun-asr-realtime", ws_url=server.ws_inference,
                                    parameters={"heartbeat": True}) as r:
        task_id = r.request_id
        # 3 s of silence first: the server sends keep-alive results (heartbeat: true), which
        # results() must skip, then the speech.
        for chunk in (silence_pcm(3.0), pcm):
            for i in range(0, len(chunk), 3200):
                r.send_audio_frame(chunk[i : i + 3200])
                time.sleep(0.1)
        r.stop()
        results = list(r.results())  # ends at task-finished
        assert r.session.finished
    assert HEX32.fullmatch(task_id) and r.request_id == task_id, (task_id, r.request_id)
    _check_results(results, repr([x.model_dump() for x in results]))


@pytest.mark.timeout(60)
def test_row74_v2_two_tasks_on_one_connection(server):
    client = dashscope.Client(api_key="test-key")
    pcm = clip_pcm(EN)
    conn = client.ws_connection(url=server.ws_inference)
    task_ids = []
    try:
        for _ in range(2):
            with client.audio.asr.recognize(model="fun-asr-realtime", connection=conn) as r:
                task_ids.append(r.request_id)
                for i in range(0, len(pcm), 12800):
                    r.send_audio_frame(pcm[i : i + 12800])
                r.stop()
                results = list(r.results())
            _check_results(results, repr([x.model_dump() for x in results]))
            assert not conn.closed
    finally:
        conn.close()
    assert len(set(task_ids)) == 2, task_ids
