"""CPU cost of the allocator settings: one decode loop per glibc mmap threshold, same run.

Each variant runs in its own child process (the settings apply at start-up, before any thread,
as in `voxscope serve`): `allocator.configure()`, then `--rounds` rounds of two 30 s beam-5 final
windows and two short greedy previews through the engine's model boundary (`WhisperBackend`),
on real speech. Prints CPU seconds (user + system), minor page faults and wall time per variant,
and each variant's ratio to the first. Pair it with `soak.py --env MALLOC_MMAP_THRESHOLD_=...`
for the memory side.

    python benchmarks/bench_allocator.py --thresholds 262144 33554432 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(rounds: int, threads: int) -> dict:
    from tests.support import clip_pcm
    from voxscope import allocator
    from voxscope.engine.model_store import ModelStore
    from voxscope.engine.types import DecodeOptions
    from voxscope.engine.whisper_backend import WhisperBackend

    allocator.configure(trim_period_s=None)
    speech = np.concatenate([np.frombuffer(clip_pcm(c), "<i2") for c in
                             ("en_osr_us_000_0034_8k", "en_jfk_inaugural")]).astype(np.float32)
    speech /= 32768
    backend = WhisperBackend(ModelStore().resolve("whisper-base"), cpu_threads=threads)
    final = DecodeOptions(language="en", beam_size=5, full_window=True, word_timestamps=True)
    preview = DecodeOptions(language="en", beam_size=1, full_window=False,
                            word_timestamps=False, temperature_fallback=False)
    windows = [speech[: 29 * 16000], speech[-29 * 16000:]]
    short = [speech[16000: 16000 * 3], speech[16000 * 5: int(16000 * 8.5)]]
    backend.decode_batch([(short[0], preview)])  # warm-up: first-call set-up is not the subject
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    for _ in range(rounds):
        for w in windows:
            backend.decode_batch([(w, final)])
        for s in short:
            backend.decode_batch([(s, preview)])
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
            "sys_s": r1.ru_stime - r0.ru_stime, "minflt": r1.ru_minflt - r0.ru_minflt,
            "wall_s": time.monotonic() - t0, "peak_rss_mb": r1.ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--thresholds", nargs="+", default=["262144", "33554432"],
                    help="MALLOC_MMAP_THRESHOLD_ values, the first is the baseline")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="variants alternate, this many times")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.rounds, args.threads)))
        return
    print(f"load avg at start {os.getloadavg()[0]:.1f}; {args.rounds} rounds, "
          f"{args.threads} threads")
    results: dict[str, list[dict]] = {t: [] for t in args.thresholds}
    for _ in range(args.repeat):
        for t in args.thresholds:
            env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": t}
            out = subprocess.run([sys.executable, __file__, "--child", "--rounds",
                                  str(args.rounds), "--threads", str(args.threads)],
                                 env=env, capture_output=True, text=True, check=True, cwd=ROOT)
            results[t].append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = min(r["cpu_s"] for r in results[args.thresholds[0]])
    print(f"{'threshold':>10} {'CPU s (min)':>12} {'sys s':>7} {'minor faults':>13} "
          f"{'wall s':>7} {'peak RSS':>9} {'CPU ratio':>9}")
    for t, runs in results.items():
        best = min(runs, key=lambda r: r["cpu_s"])
        print(f"{t:>10} {best['cpu_s']:>12.1f} {best['sys_s']:>7.1f} {best['minflt']:>13} "
              f"{best['wall_s']:>7.1f} {best['peak_rss_mb']:>7.0f} MB "
              f"{best['cpu_s'] / base:>9.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
