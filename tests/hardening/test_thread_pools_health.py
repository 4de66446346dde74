"""A running server applies a configured BLAS cap and reports its thread pools (/health).

Issue 12: the pools' sizes are product settings (`blas_threads`, `cpu_threads`), applied once at
start before the first decode; /health's `thread_pools` says what was applied and what each
native pool (threadpoolctl's view) holds now. A real server with a CPU model and an explicit cap
of 1 (this machine's OpenBLAS default is one thread per core): the cap shows, the server decodes
through the SDK, and the cap still holds after that decode.
"""

from __future__ import annotations

import pytest
from dashscope.audio.asr import Recognition

from tests.support import ServerProcess, clip, pcm16, sdk_at


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(config={"server": {"blas_threads": 1, "cpu_threads": 2}}).start()
    yield srv
    srv.stop()


def blas_pools(health: dict) -> list[dict]:
    return [p for p in health["thread_pools"]["pools"] if p["api"] == "blas"]


def test_health_reports_the_applied_limits(server):
    pools = server.health()["thread_pools"]
    assert pools["blas"] == 1
    assert pools["decode_cpu"] == 2  # the model's CTranslate2 threads, as configured
    assert blas_pools(server.health()), pools  # numpy's OpenBLAS is found and listed
    assert all(p["threads"] == 1 for p in blas_pools(server.health())), pools


@pytest.mark.timeout(300)
def test_cap_holds_after_a_decode(server, tmp_path):
    path = tmp_path / "ldc.pcm"
    path.write_bytes(pcm16(str(clip("en_ldc93s1")["file"]), 16000))
    with sdk_at(server):
        res = Recognition(model="paraformer-realtime-v2", format="pcm", sample_rate=16000,
                          callback=None).call(str(path))
    assert res.status_code == 200, res.message
    assert any(s["text"] for s in res.get_sentence()), res.get_sentence()
    assert all(p["threads"] == 1 for p in blas_pools(server.health()))
