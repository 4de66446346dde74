"""File windows decoded one at a time against two at once on replicas of one model object.

Cuts the bench_file_throughput file of a language into the file task's VAD windows and decodes
every window with the file task's options (full window, beam 5, word timestamps, no sampling
fallback), once per configuration, each configuration in its own child process (its CPU seconds
and peak RSS are its own):

- `seq`: one replica (`workers=1`), `--threads` threads, windows one after another (today);
- `seq:2x2`: two replicas, but one window at a time (what a second replica costs by itself);
- `par`: `workers=2` replicas of one `ctranslate2.models.Whisper` (the weights are shared), each
  with `threads` threads, two Python threads taking windows in turn, so two decode at once.

Prints wall and CPU seconds of the decodes, the peak RSS, and whether every window's text and
word timings are identical to the first configuration's (a window's text must not depend on
timing, thread count or which replica took it: resume exactness relies on it).

    python benchmarks/diag_parallel_windows.py --lang en --minutes 5 --config seq:1x2 par:2x2 par:2x1
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


def _peak_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(lang: str, minutes: float, workers: int, threads: int, limit: int,
          callers: int) -> dict:
    from benchmarks.bench_file_throughput import build
    from voxscope import allocator
    from voxscope.config import load_settings
    from voxscope.engine.model_store import ModelStore
    from voxscope.engine.offline import OfflineOptions, _Segmenter
    from voxscope.engine.types import DecodeOptions
    from voxscope.engine.vad import SileroVad
    from voxscope.engine.whisper_backend import WhisperBackend

    allocator.configure()  # as `serve` does
    settings = load_settings()
    store = ModelStore(settings.cache_dir)
    pcm, _ref, _seconds = build(lang, minutes, 1.0)
    audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    windows = _Segmenter(SileroVad(store.silero_vad_path()), OfflineOptions()).feed(
        audio, final=True)
    if limit:
        windows = windows[:limit]
    spec = settings.models["whisper-base"]
    backend = WhisperBackend(store.resolve(spec.path), compute_type=spec.compute_type,
                             cpu_threads=threads, workers=workers)
    decode = DecodeOptions(beam_size=5, full_window=True, word_timestamps=True,
                           temperature_fallback=False)
    out: list = [None] * len(windows)
    todo = list(range(len(windows)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop(0)
            s, e, _ = windows[i]
            tr = backend.decode_batch([(audio[s:e], decode)])[0]
            out[i] = [tr.text, [(round(w.start, 2), round(w.end, 2)) for w in tr.words]]

    allocator.bulk_decoding(True)  # a file task alone on the main model, as the scheduler does
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    threads_ = [threading.Thread(target=work) for _ in range(callers)]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return {"windows": len(windows), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "peak_mb": round(_peak_mb()), "out": out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lang", default="en")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--limit", type=int, default=0, help="only the first N windows (0: all)")
    ap.add_argument("--config", nargs="+", default=["seq:1x2", "par:2x2", "par:2x1"],
                    help="name:WORKERSxTHREADS")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        name, wt = args.child.split(":")
        w, t = map(int, wt.split("x"))
        print(json.dumps(child(args.lang, args.minutes, w, t, args.limit,
                               1 if name == "seq" else w)))
        return
    base = None
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    for cfg in args.config:
        proc = subprocess.run([sys.executable, __file__, "--lang", args.lang, "--minutes",
                               str(args.minutes), "--limit", str(args.limit), "--child", cfg],
                              capture_output=True, text=True, cwd=ROOT, env=os.environ)
        if proc.returncode:
            print(cfg, "failed:", proc.stderr[-2000:])
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        out = res.pop("out")
        base = base or out
        same = sum(a == b for a, b in zip(out, base, strict=True))
        print(f"{args.lang} {cfg}: {json.dumps(res)} identical windows {same}/{len(out)} "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
