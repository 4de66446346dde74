"""The process's CPU thread pools: how many threads each may use, decided once at start.

Two pools do math outside the Whisper decode itself: numpy's BLAS (OpenBLAS; faster-whisper's
log-mel filterbank is a matmul per window) and CTranslate2's OpenMP pool (its `cpu_threads`).
Both default to one thread per core, and an idle pool worker spins before it sleeps. With the
model on a GPU that spinning was most of the server's CPU (benchmarks/RESULTS.md, "Thread pools,
session 10": 12-14 of 16 cores busy at 36 streams with the GPU at 10-27 %, 1.2 cores with the pools
capped, latency the same or better). On this 2-core CPU machine the second BLAS thread cost ~35
CPU-ms of spinning per log-mel call, and one thread gave the same latency at 1 and 4 streams for
11-23 % less server CPU ("Session 10, lead"). So numpy's BLAS pool is capped at one thread
everywhere by default, CTranslate2's at 2 on a GPU; on CPU the decode needs the cores and keeps
them unless configured.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

AUTO = -1  # a setting's "the default for this pool" value
DEFAULT_BLAS_THREADS = 1  # the log-mel matmul is small: one thread does it without waking a pool
GPU_DECODE_THREADS = 2  # CTranslate2's CPU-side pool while the decode runs on the GPU


@dataclass(frozen=True)
class ThreadLimits:
    """What the process applies: None / 0 mean the library's own default (one per core)."""

    blas: int | None  # numpy's BLAS pool (process-wide)
    decode_cpu: int  # CTranslate2 `cpu_threads` of a model on CPU (0: its default, all cores)
    decode_gpu: int  # the same for a model on a GPU


def plan(blas_threads: int = AUTO, cpu_threads: int = 0) -> ThreadLimits:
    """The limits for the two settings (where each model decodes picks its decode threads:
    `decode_threads`).

    `blas_threads`: > 0 caps numpy's BLAS pool, 0 leaves it alone, AUTO (-1) caps it at
    DEFAULT_BLAS_THREADS on any device. `cpu_threads`: > 0 is CTranslate2's
    thread count everywhere; 0 lets CTranslate2 pick on CPU and uses GPU_DECODE_THREADS on a GPU.
    """
    blas = (DEFAULT_BLAS_THREADS if blas_threads == AUTO
            else blas_threads if blas_threads > 0 else None)
    decode_gpu = cpu_threads if cpu_threads > 0 else GPU_DECODE_THREADS
    return ThreadLimits(blas=blas, decode_cpu=max(cpu_threads, 0), decode_gpu=decode_gpu)


def decode_threads(limits: ThreadLimits, device: str) -> int:
    """CTranslate2's `cpu_threads` for a model on `device`."""
    return limits.decode_cpu if device == "cpu" else limits.decode_gpu


class ThreadPools:
    """Applies ThreadLimits' process-wide part (BLAS) and reports every pool as it stands."""

    def __init__(self, limits: ThreadLimits) -> None:
        self.limits = limits
        self._controller = None
        if limits.blas is not None:
            # threadpoolctl sets the limit through the loaded library (openblas_set_num_threads):
            # OPENBLAS_NUM_THREADS set now would be too late, numpy has loaded OpenBLAS already.
            # The controller object is kept: its limit holds until the process ends.
            from threadpoolctl import ThreadpoolController

            self._controller = ThreadpoolController()
            self._controller.limit(limits=limits.blas, user_api="blas")
            log.info("numpy's BLAS pool capped at %d thread(s)", limits.blas)

    def report(self) -> dict:
        """The limits and each native pool's current size (for /health). OpenMP's figure is
        what a new parallel region would take on the asking thread; CTranslate2's own worker
        threads use `decode_cpu` / `decode_gpu` instead."""
        from threadpoolctl import threadpool_info

        return {**asdict(self.limits),
                "pools": [{"api": p["user_api"], "library": p["prefix"],
                           "threads": p["num_threads"]} for p in threadpool_info()]}
