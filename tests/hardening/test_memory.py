"""Issue 9 item 15: memory stays bounded under concurrent realtime streams plus file tasks.

RSS itself is too noisy for a test on a shared machine (benchmarks/soak.py measures its slope).
What is deterministic is the mechanism: with glibc's defaults every thread that allocates gets
its own malloc arena (up to 8 per core), and freed buffers pile up fragmented across them. The
server bounds the arenas (voxscope.allocator) and reports their number on /metrics.
"""

from __future__ import annotations

import re
import threading

import httpx
import pytest
from dashscope.audio.asr import Recognition, Transcription

from tests.files.helpers import AudioHost, output_dict
from tests.support import ServerProcess, pcm16, sdk_at
from tests.support import clip as clip_info

STREAMS = 3
CLIPS = ["en_ldc93s1", "zh_cosyvoice_zero_shot_prompt", "en_librispeech_1995-1837-0001"]


@pytest.fixture(scope="module")
def srv():
    s = ServerProcess(config={"server": {"fetch_allow_private": True,
                                         "max_sessions": STREAMS + 2}}).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def host():
    h = AudioHost().start()
    yield h
    h.stop()


def _arenas(srv: ServerProcess) -> int:
    r = httpx.get(srv.http + "/metrics", headers={"Authorization": "Bearer test-key"}, timeout=30)
    assert r.status_code == 200, r.text
    m = re.search(r"^voxscope_malloc_arenas (\S+)$", r.text, re.M)
    assert m, "voxscope_malloc_arenas missing from /metrics"
    return int(float(m.group(1)))


def test_malloc_arenas_stay_bounded_under_mixed_load(srv, host, tmp_path) -> None:
    """Concurrent realtime sessions and a file task run on many threads (event loop, inference
    worker, CTranslate2's threads, task worker, lease renewer, to_thread helpers); the process
    must still hold at most 2 malloc arenas, and every request must succeed."""
    failures: list[str] = []

    def stream(k: int) -> None:
        path = tmp_path / f"s{k}.pcm"
        path.write_bytes(pcm16(str(clip_info(CLIPS[k % len(CLIPS)])["file"]), 16000))
        for _ in range(2):
            res = Recognition(model="paraformer-realtime-v2", format="pcm", sample_rate=16000,
                              callback=None).call(str(path))
            if res.status_code != 200:
                failures.append(f"stream {k}: {res.status_code} {res.code} {res.message}")

    with sdk_at(srv):
        task = Transcription.async_call(model="paraformer-v2",
                                        file_urls=[host.clip_url("en_jfk_inaugural")])
        assert task.status_code == 200, task.message
        threads = [threading.Thread(target=stream, args=(k,)) for k in range(STREAMS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=600)
        done = output_dict(Transcription.wait(task=task.output.task_id, wait_timeout=600))
    assert not failures, failures
    assert done["task_status"] == "SUCCEEDED", done
    arenas = _arenas(srv)
    if arenas == 0:
        pytest.skip("not glibc: no malloc arenas to bound")
    assert 1 <= arenas <= 2, f"{arenas} malloc arenas: per-thread arenas are not bounded"


_SHAPES_SCRIPT = r"""
import ctypes, gc, random, sys
from voxscope import allocator
allocator.configure(trim_period_s=None)
import numpy as np
from voxscope.config import load_settings
from voxscope.engine.hub import Engine
from voxscope.engine.types import DecodeOptions
from tests.support import clip_pcm, manifest
class MI(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                               "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6"); libc.mallinfo2.restype = MI
def used():
    gc.collect(); return libc.mallinfo2().uordblks / 2**20
s = load_settings(data_dir=sys.argv[1])
be = Engine(s).scheduler(s.profiles["paraformer-realtime-v2"].model).backend
clip = next(c["id"] for c in manifest() if c["lang"] == "en")
a = np.frombuffer(clip_pcm(clip), np.int16).astype(np.float32) / 32768
opt = DecodeOptions(language="en", beam_size=1, full_window=False, word_timestamps=False,
                    temperature_fallback=False)
rng = random.Random(0)
def run(n):
    for _ in range(n):  # short windows: a new encoder width almost every decode
        be.decode_batch([(a[:32000 + rng.randrange(0, 96000)], opt)])
run(16)
u0 = used(); run(24); print(f"GROWTH {used() - u0:.1f}")
"""


def test_new_window_widths_do_not_grow_native_heap(tmp_path) -> None:
    """Each distinct encoder width used to leave a oneDNN primitive (~0.6 MB of native heap) in
    a 1024-entry cache: ~1 MB per realtime session in a soak. allocator.configure() caps it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    out = subprocess.run([sys.executable, "-c", _SHAPES_SCRIPT, str(tmp_path)], env=env,
                         cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    growth = float(re.search(r"GROWTH (\S+)", out.stdout).group(1))
    assert growth < 4, f"native heap grew {growth} MB over 24 decodes of new widths"
