"""The thread-pool policy (engine/threads.py), model-free: devices and settings in, limits out.

Issue 12, GPU rows: with the model on a GPU, numpy's BLAS pool and CTranslate2's OpenMP pool,
sized one thread per core, spun on idle and took 12-14 of 16 cores at 36 streams; capped, 1.2
cores at the same or better latency. On CPU the decode needs the cores: defaults unchanged.
"""

from __future__ import annotations

import pytest

from voxscope.config import Settings
from voxscope.engine.threads import AUTO, ThreadLimits, decode_threads, plan


def test_cpu_defaults_leave_the_pools_alone():
    limits = plan({"cpu"})
    assert limits == ThreadLimits(blas=None, decode_cpu=0, decode_gpu=2)
    assert decode_threads(limits, "cpu") == 0  # CTranslate2 picks: all cores, as before


def test_gpu_defaults_cap_both_pools_small():
    limits = plan({"cuda"})
    assert limits.blas == 1
    assert decode_threads(limits, "cuda") == 2


def test_a_gpu_model_beside_a_cpu_model_caps_blas_only_for_the_process():
    limits = plan({"cpu", "cuda"})
    assert limits.blas == 1  # process-wide: the GPU model's streams are what spin it
    assert decode_threads(limits, "cpu") == 0  # the CPU model's decode keeps its cores
    assert decode_threads(limits, "cuda") == 2


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_explicit_settings_win_on_any_device(device):
    limits = plan({device}, blas_threads=3, cpu_threads=4)
    assert limits.blas == 3
    assert decode_threads(limits, device) == 4


def test_zero_means_the_library_default():
    assert plan({"cuda"}, blas_threads=0).blas is None  # explicit "don't cap" on a GPU


def test_settings_defaults_and_bounds():
    s = Settings()
    assert (s.blas_threads, s.cpu_threads) == (AUTO, 0)
    with pytest.raises(ValueError):
        Settings(blas_threads=-2)
    with pytest.raises(ValueError):
        Settings(cpu_threads=-1)
