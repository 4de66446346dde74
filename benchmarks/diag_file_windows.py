"""Per-window diagnosis of file decoding: unconditioned (batched) against conditioned (one window
at a time, each prompted with the text before it), on the bench_file_throughput files.

For every VAD window of the file: avg_logprob, compression ratio, fallback temperature, tokens
and decode seconds in both modes; then the error rate of each mode and of "first pass, repaired
with the conditioned result where the first pass looks weak" for a few thresholds (the repaired
windows' context is the conditioned chain's, so this is an estimate for choosing a threshold).

    python benchmarks/diag_file_windows.py --lang zh --minutes 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_file_throughput import build  # noqa: E402
from tests.support import error_rate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lang", default="zh")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from voxscope.config import load_settings
    from voxscope.engine.hub import Engine
    from voxscope.engine.offline import (
        PREVIOUS_CHARS,
        SR,
        OfflineOptions,
        _repair_holds,
        _Segmenter,
    )
    from voxscope.engine.types import DecodeOptions

    pcm, reference, seconds = build(args.lang, args.minutes, 1.0)
    audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    engine = Engine(load_settings(cpu_threads=args.threads, max_batch=4))
    backend = engine.scheduler("whisper-base").backend
    seg = _Segmenter(engine.vad, OfflineOptions())
    windows = seg.feed(audio, final=True)
    decode = DecodeOptions(beam_size=5, full_window=True, word_timestamps=False)
    first = []
    t = time.monotonic()
    for i in range(0, len(windows), 4):
        items = [(audio[s:e], decode) for s, e, _ in windows[i:i + 4]]
        first += backend.decode_batch(items)
    t_first = time.monotonic() - t
    cond, previous, t_cond, contexts = [], "", [], []
    for s, e, _ in windows:
        t = time.monotonic()
        contexts.append(previous[-PREVIOUS_CHARS:])
        tr = backend.decode_batch([(audio[s:e], replace(
            decode, prompt=previous[-PREVIOUS_CHARS:] or None))])[0]
        t_cond.append(time.monotonic() - t)
        cond.append(tr)
        previous = (previous + " " + tr.text).strip()
    rows = []
    for (s, e, _), a, b, tc in zip(windows, first, cond, t_cond, strict=True):
        rows.append({"at": round(s / SR, 1), "len": round((e - s) / SR, 1),
                     "u_lp": round(a.avg_logprob, 2), "u_cr": round(a.compression_ratio, 2),
                     "u_t": a.temperature, "u_tok": len(a.tokens),
                     "c_lp": round(b.avg_logprob, 2), "c_cr": round(b.compression_ratio, 2),
                     "c_t": b.temperature, "c_tok": len(b.tokens), "c_s": round(tc, 1),
                     "same": a.text == b.text, "lang": a.language + "/" + b.language,
                     "holds": _repair_holds(a, b, contexts[len(rows)])})
        print(json.dumps(rows[-1]), flush=True)
        if a.text != b.text:
            print("   U:", a.text[:300])
            print("   C:", b.text[:300])
    u = " ".join(x.text for x in first)
    c = " ".join(x.text for x in cond)
    print(f"{args.lang}: {seconds:.0f} s, {len(windows)} windows; unconditioned {t_first:.1f} s "
          f"err {100 * error_rate(args.lang, reference, u):.2f} %, fallbacks "
          f"{sum(x.temperature > 0 for x in first)}; conditioned {sum(t_cond):.1f} s err "
          f"{100 * error_rate(args.lang, reference, c):.2f} %, fallbacks "
          f"{sum(x.temperature > 0 for x in cond)}")
    for thr in (-0.1, -0.2, -0.3, -0.4, -0.5, -0.6, -0.8):
        pick = [b if (a.avg_logprob < thr or a.temperature > 0) and ctx
                and _repair_holds(a, b, ctx) else a
                for a, b, ctx in zip(first, cond, contexts, strict=True)]
        n = sum(p is not a for p, a in zip(pick, first, strict=True))
        weak = sum(a.avg_logprob < thr or a.temperature > 0 for a in first)
        print(f"  repair where avg_logprob < {thr}: {weak} windows repaired, {n} replaced, err "
              f"{100 * error_rate(args.lang, reference, ' '.join(x.text for x in pick)):.2f} %")
    engine.close()


if __name__ == "__main__":
    main()
