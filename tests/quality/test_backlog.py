"""A task whose audio arrived faster than real time is not "idle" while the server decodes it.

`Recognition.call()` sends a whole file back to back and then `finish-task`; the client then waits
for the server to recognise everything. The server's idle rule ("no speech for idle_timeout_s",
or with heartbeat "no audio for idle_timeout_s") must not fire during that wait: the client has
sent speech and is not idle, the server is busy. Here the rule is set to 2 s and a 35 s speech
clip (ten sentences) is sent at full speed, so decoding it certainly takes longer than 2 s on CPU.
"""

from __future__ import annotations

import pytest
from dashscope.audio.asr import Recognition

from tests.support import ServerProcess, clip, error_rate, pcm16, sdk_at


@pytest.fixture(scope="module")
def short_idle_server():
    srv = ServerProcess(env={"VOXSCOPE_IDLE_TIMEOUT_S": "2"}).start()
    with sdk_at(srv):
        yield srv
    srv.stop()


@pytest.mark.parametrize("heartbeat", [False, True])
def test_long_file_sent_at_once_is_not_failed_as_idle(short_idle_server, tmp_path, heartbeat):
    c = clip("en_osr_us_000_0034_8k")
    path = tmp_path / "speech.pcm"
    path.write_bytes(pcm16(str(c["file"]), 16000))
    rec = Recognition(model="paraformer-realtime-v2", format="pcm", sample_rate=16000,
                      callback=None, heartbeat=heartbeat)
    res = rec.call(str(path))
    assert res.status_code == 200, (res.status_code, res.code, res.message)
    text = " ".join(s["text"] for s in res.get_sentence())
    assert error_rate(c["lang"], c["reference"], text) <= 0.1, text
