"""The thread-pool policy (engine/threads.py), model-free: devices and settings in, limits out.

Issue 12, GPU rows: with the model on a GPU, numpy's BLAS pool and CTranslate2's OpenMP pool,
sized one thread per core, spun on idle and took 12-14 of 16 cores at 36 streams; capped, 1.2
cores at the same or better latency. On CPU the decode needs the cores: defaults unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from voxscope.config import Settings
from voxscope.engine.threads import AUTO, ThreadLimits, decode_threads, plan


def test_cpu_defaults_cap_blas_and_leave_the_decode_alone():
    # One BLAS thread on CPU too: same latency, 11-23 % less server CPU (RESULTS "Session 10, lead").
    limits = plan()
    assert limits == ThreadLimits(blas=1, decode_cpu=0, decode_gpu=2)
    assert decode_threads(limits, "cpu") == 0  # CTranslate2 picks: all cores, as before


def test_gpu_defaults_cap_both_pools_small():
    limits = plan()
    assert limits.blas == 1
    assert decode_threads(limits, "cuda") == 2


def test_a_gpu_model_beside_a_cpu_model_caps_blas_only_for_the_process():
    limits = plan()
    assert limits.blas == 1  # process-wide: the GPU model's streams are what spin it
    assert decode_threads(limits, "cpu") == 0  # the CPU model's decode keeps its cores
    assert decode_threads(limits, "cuda") == 2


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_explicit_settings_win_on_any_device(device):
    limits = plan(blas_threads=3, cpu_threads=4)
    assert limits.blas == 3
    assert decode_threads(limits, device) == 4


def test_zero_means_the_library_default():
    assert plan(blas_threads=0).blas is None  # explicit "don't cap" on a GPU


def test_settings_defaults_and_bounds():
    s = Settings()
    assert (s.blas_threads, s.cpu_threads) == (AUTO, 0)
    with pytest.raises(ValueError):
        Settings(blas_threads=-2)
    with pytest.raises(ValueError):
        Settings(cpu_threads=-1)


def test_engine_applies_the_gpu_policy_before_any_model_loads(tmp_path):
    """The wiring, without a GPU: an Engine whose models are configured on `cuda` (nothing loads
    until a scheduler is asked for) caps numpy's BLAS pool at start. In a child process: the cap
    is process-wide."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models:\n  whisper-base:\n    path: whisper-base\n    device: cuda\n"
                   "    compute_type: float16\n")
    code = textwrap.dedent(f"""
        import json
        from threadpoolctl import threadpool_info
        from voxscope.config import load_settings
        from voxscope.engine.hub import Engine
        e = Engine(load_settings({str(cfg)!r}))
        print(json.dumps([e.threads.limits.blas, e.threads.limits.decode_gpu,
                          [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"],
                          e.threads.report()["blas"]]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "2"})
    assert out.returncode == 0, out.stderr[-2000:]
    blas, decode_gpu, pools, reported = json.loads(out.stdout.strip().splitlines()[-1])
    assert (blas, decode_gpu, reported) == (1, 2, 1)
    assert pools and all(n == 1 for n in pools)
