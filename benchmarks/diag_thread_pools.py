"""Which CPU thread pool spins: each pool alone, at sizes up to a 16-core machine's, paced.

A GPU server's CPU was mostly idle pool threads spinning (benchmarks/RESULTS.md, "Thread pools,
session 10"). This isolates the two pools a decode touches, in this process, with the calls paced
like streams' windows (busy, then idle until the next one), and reports CPU-seconds per call:

- BLAS: faster-whisper's log-mel features of a `--window` s window (its filterbank is a numpy
  matmul on OpenBLAS), with numpy's pool set to each size by threadpoolctl;
- OpenMP: CTranslate2's Whisper encoder on the same features with `intra_threads` at each size
  (on CPU the encoder's work is also in this figure: compare sizes, not pools).

A pool larger than the machine's cores still shows its spinning cost per call (the threads spin
on whatever core they get). Nothing here needs a GPU.

    python benchmarks/diag_thread_pools.py --sizes 1 2 16 --rate 10 --seconds 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def paced(fn, rate: float, seconds: float) -> dict:
    """Call `fn` `rate` times a second for `seconds`; CPU and wall seconds per call."""
    n = int(rate * seconds)
    cpu0, t0 = time.process_time(), time.monotonic()
    busy = 0.0
    for k in range(n):
        t = time.monotonic()
        fn()
        busy += time.monotonic() - t
        time.sleep(max(0.0, t0 + (k + 1) / rate - time.monotonic()))
    cpu = time.process_time() - cpu0
    return {"calls": n, "cpu_s_per_call": cpu / n, "wall_s_per_call": busy / n,
            "cores_busy": cpu / (time.monotonic() - t0)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 16])
    ap.add_argument("--rate", type=float, default=10.0, help="calls per second")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--window", type=float, default=5.0, help="audio seconds per call")
    ap.add_argument("--blas-only", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import ctranslate2
    from faster_whisper.feature_extractor import FeatureExtractor
    from threadpoolctl import threadpool_info, threadpool_limits

    from voxscope.engine.model_store import ModelStore

    audio = np.random.default_rng(0).standard_normal(int(16000 * args.window)).astype(np.float32)
    audio *= 0.1
    fe = FeatureExtractor()
    feats = fe(audio)
    out: dict = {"machine": f"{os.cpu_count()} cpus", "load_avg_1m": os.getloadavg()[0],
                 "pools": threadpool_info(), "blas": {}, "openmp": {}}
    print(f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}; "
          f"{args.rate:g} calls/s for {args.seconds:g} s, {args.window:g} s windows")
    for size in args.sizes:
        with threadpool_limits(limits=size, user_api="blas"):
            r = paced(lambda: fe(audio), args.rate, args.seconds)
        out["blas"][size] = r
        print(f"BLAS   {size:>3} threads: {1000 * r['cpu_s_per_call']:7.1f} CPU-ms/call "
              f"({1000 * r['wall_s_per_call']:6.1f} ms wall), {r['cores_busy']:.2f} cores busy, "
              f"load {os.getloadavg()[0]:.2f}")
    sizes = [] if args.blas_only else args.sizes
    model_path = str(ModelStore().resolve("whisper-base"))
    # The window's features as voxscope's short windows give them (no padding to 30 s).
    x = np.ascontiguousarray(feats[:, : feats.shape[1] // 2 * 2][None])
    with threadpool_limits(limits=1, user_api="blas"):  # BLAS out of the encoder's figure
        for size in sizes:
            model = ctranslate2.models.Whisper(model_path, device="cpu", compute_type="int8",
                                               intra_threads=size)
            sv = ctranslate2.StorageView.from_array(x)
            model.encode(sv)  # warm
            r = paced(lambda m=model, v=sv: m.encode(v), min(args.rate, 4.0), args.seconds)
            out["openmp"][size] = r
            print(f"OpenMP {size:>3} threads: {1000 * r['cpu_s_per_call']:7.1f} CPU-ms/call "
                  f"({1000 * r['wall_s_per_call']:6.1f} ms wall), {r['cores_busy']:.2f} cores "
                  f"busy, load {os.getloadavg()[0]:.2f}")
            del model
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
