"""What a second CTranslate2 replica costs in memory, and which setting gives it back.

Each variant runs in its own child process (settings apply at start-up, as in `voxscope serve`):
`allocator.configure()`, a `WhisperBackend` with `--workers` replicas, then every English and
Mandarin clip of shared/audio decoded one after another from one caller (a final: full window,
beam 5, word timestamps; and a greedy preview of its first 3 s), as a streaming-only server does;
with two replicas CTranslate2 hands successive calls to either. `--parallel` decodes from two
callers at once instead (a file task's two windows). `--windows` decodes file-task windows instead
(clips joined with 1 s pauses into ~25 s windows, full window, beam 5, word timestamps; no
previews), `--batch N` of them per `decode_batch` call: does working memory scale with the batch
(one replica decoding a batch of 2 vs two replicas decoding one each)? Prints peak RSS (VmHWM),
RSS after the loop and after `malloc_trim`, CPU seconds, and whether the texts equal the first
variant's; memory is independent of the machine's load, CPU seconds nearly so.

    python benchmarks/bench_replica_memory.py --variant w1:workers=1 --variant w2:workers=2 \
        --variant w2_nofastmm:workers=2,MKL_DISABLE_FAST_MM=1
    python benchmarks/bench_replica_memory.py --windows --variant w1b2:workers=1,batch=2 \
        --variant w2b1p:workers=2,batch=1,parallel=1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _status(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _windows(clips: list[np.ndarray], seconds: float = 25.0) -> list[np.ndarray]:
    """Clips joined with 1 s pauses into windows of about `seconds` (as VAD packs a file)."""
    gap = np.zeros(16000, dtype=np.float32)
    out: list[np.ndarray] = []
    cur: list[np.ndarray] = []
    pieces = [c[i:i + 20 * 16000] for c in clips for i in range(0, c.size, 20 * 16000)]
    for c in pieces:
        if cur and sum(x.size for x in cur) + c.size > seconds * 16000:
            out.append(np.concatenate(cur))
            cur = []
        cur += [c, gap]
    return out + ([np.concatenate(cur)] if cur else [])


def child(workers: int, threads: int, rounds: int, parallel: bool, windows: bool = False,
          batch: int = 1, lock: str = "") -> dict:
    from tests.support import clip_pcm, manifest
    from voxscope import allocator
    from voxscope.engine.model_store import ModelStore
    from voxscope.engine.types import DecodeOptions
    from voxscope.engine.whisper_backend import WhisperBackend

    allocator.configure(trim_period_s=None)
    clips = [np.frombuffer(clip_pcm(c["id"]), "<i2").astype(np.float32) / 32768
             for c in manifest() if c["lang"] in ("en", "zh")]
    backend = WhisperBackend(ModelStore().resolve("whisper-base"), cpu_threads=threads,
                             workers=workers)
    if lock:  # one phase at a time across the replicas: does its buffers make the peak?
        guard = threading.Lock()
        for name in lock.split("+"):
            owner = backend._fw if name == "find_alignment" else backend
            fn = getattr(owner, name)

            def locked(*a, _fn=fn, **k):
                with guard:
                    return _fn(*a, **k)
            setattr(owner, name, locked)
    final = DecodeOptions(beam_size=5, full_window=True, word_timestamps=True)
    preview = DecodeOptions(beam_size=1, full_window=False, word_timestamps=False,
                            temperature_fallback=False)
    allocator.trim()
    loaded = _status("VmRSS")
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    texts: list[str] = []

    if windows:
        clips = _windows(clips)

    def decode(items: list[np.ndarray]) -> list[str]:
        out = []
        if windows:  # file-task windows, `batch` per call
            for i in range(0, len(items), batch):
                out += [t.text for t in backend.decode_batch([(a, final)
                                                              for a in items[i:i + batch]])]
            return out
        for a in items:
            out.append(backend.decode_batch([(a, final)])[0].text)
            out.append(backend.decode_batch([(a[: 3 * 16000], preview)])[0].text)
        return out

    for _ in range(rounds):
        if parallel:  # two callers, as the scheduler's two threads on a file task
            halves: list[list[str]] = [[], []]
            ts = [threading.Thread(target=lambda k=k, h=halves: h[k].extend(decode(clips[k::2])))
                  for k in (0, 1)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            # back in the clips' order, so same_text compares like with like
            per = 1 if windows else 2  # texts per item: a window, or a final and a preview
            order = [i for k in (0, 1) for i in range(k, len(clips), 2)]
            flat = halves[0] + halves[1]
            by_item = {i: flat[j * per:(j + 1) * per] for j, i in enumerate(order)}
            texts += [t for i in range(len(clips)) for t in by_item[i]]
        else:
            texts += decode(clips)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - t0
    after = _status("VmRSS")
    allocator.trim()
    return {"loaded_mb": round(loaded), "peak_mb": round(_status("VmHWM")),
            "after_mb": round(after), "trimmed_mb": round(_status("VmRSS")),
            "cpu_s": round((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), 1),
            "wall_s": round(wall, 1),
            "texts": texts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME:workers=N[,ENV=VALUE...] (repeatable)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--parallel", action="store_true")
    ap.add_argument("--windows", action="store_true", help="~25 s file windows, no previews")
    ap.add_argument("--batch", type=int, default=1, help="windows per decode call (--windows)")
    ap.add_argument("--lock", default="", help="backend phases run one at a time across replicas "
                    "(+-joined: _encode, _generate, find_alignment)")
    ap.add_argument("--child", nargs=1, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.threads, args.rounds, args.parallel,
                               args.windows, args.batch, args.lock)))
        return
    first: list[str] | None = None
    for spec in args.variant or ["w1:workers=1", "w2:workers=2"]:
        name, _, kvs = spec.partition(":")
        env, workers = dict(os.environ), 1
        batch, parallel, lock = args.batch, args.parallel, args.lock
        for kv in filter(None, kvs.split(",")):
            k, _, v = kv.partition("=")
            if k == "workers":
                workers = int(v)
            elif k == "batch":
                batch = int(v)
            elif k == "parallel":
                parallel = v not in ("0", "")
            elif k == "lock":
                lock = v
            else:
                env[k] = v
        out = subprocess.run([sys.executable, __file__, "--child", str(workers), "--threads",
                              str(args.threads), "--rounds", str(args.rounds),
                              "--batch", str(batch), *(["--windows"] if args.windows else []),
                              *(["--lock", lock] if lock else []),
                              *(["--parallel"] if parallel else [])],
                             capture_output=True, text=True, env=env, cwd=ROOT)
        if out.returncode:
            print(name, "failed:", out.stderr[-2000:], flush=True)
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        texts = r.pop("texts")
        first = first or texts
        print(json.dumps({"variant": name, **r, "same_text": texts == first, "batch": batch,
                          "parallel": parallel, "lock": lock,
                          "load_avg_1m": round(os.getloadavg()[0], 1)}), flush=True)


if __name__ == "__main__":
    main()
