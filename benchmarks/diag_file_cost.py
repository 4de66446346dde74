"""Where a file decode's time goes, phase by phase, next to BatchedInferencePipeline's.

Builds `bench_file_throughput.py`'s file, decodes it in-process with `engine.offline` (the file
task's options: conditioned repair, no temperature fallback, 2 windows in flight) on ONE replica
(`model_workers: 1`, so phases never overlap and their wall times add up), and times the
backend's phases: encoder passes (full windows, tails), language detection, beam-5 generate,
word alignment, tail decodes, and gap recovery (a repair pass shows as extra decode_batch calls); also
how much of each encoder pass was padding. Then faster-whisper's BatchedInferencePipeline (batch
8) on the same file and threads, its encode and generate calls timed and counted. One run,
wall seconds and shares: on a shared machine compare shares, not seconds.

    python benchmarks/diag_file_cost.py --lang en --minutes 5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.diag_file_errors import build  # noqa: E402
from benchmarks.settings_args import parse_settings  # noqa: E402

SR = 16000


def _timed(obj, name: str, acc: dict, key: str | None = None, count=None) -> None:
    """Wrap obj.name so its wall time (and a count) add up under `key`."""
    fn = getattr(obj, name)

    def wrapper(*a, **kw):
        t = time.monotonic()
        try:
            return fn(*a, **kw)
        finally:
            k = key or name
            acc[k][0] += time.monotonic() - t
            acc[k][1] += count(*a, **kw) if count else 1
    setattr(obj, name, wrapper)


def vox(audio: np.ndarray, threads: int, settings: dict, extra: dict) -> dict:
    from voxscope.config import load_settings
    from voxscope.engine import offline
    from voxscope.engine.hub import Engine
    from voxscope.engine.offline import OfflineOptions, transcribe_chunks
    from voxscope.engine.whisper_backend import FULL_FRAMES

    cfg = Path(tempfile.mkdtemp(prefix="voxscope-cost-")) / "config.yaml"
    cfg.write_text("{}")
    engine = Engine(load_settings(cfg, cpu_threads=threads, **{"model_workers": 1, **settings}))
    sched = engine.scheduler("whisper-base")
    backend = sched.backend
    acc: dict = defaultdict(lambda: [0.0, 0])
    frames = {"content": 0, "padded": 0}
    encode = backend._encode

    def encode_counted(batch):
        frames["padded"] += batch.shape[0] * batch.shape[-1]
        # content: frames before the all-zero padding (features of silence are not zero,
        # so count by the caller's width instead: a full window is FULL_FRAMES wide)
        return encode(batch)
    backend._encode = encode_counted
    _timed(backend, "_encode", acc, "encode", lambda batch: batch.shape[0])
    _timed(backend, "_languages", acc, "language")
    _timed(backend, "_generate", acc, "generate", lambda enc, prompts, *a, **k: len(prompts))
    tails_seen: list[dict] = []  # per tail: seconds left after the last timestamp, tokens added
    decode_tails = backend._decode_tails

    def tails_counted(items, out, tails, langs):
        before = [len(out[b].tokens) for b, _ in tails]
        decode_tails(items, out, tails, langs)
        for (b, last), n in zip(tails, before, strict=True):
            left = items[b][0].size / SR - last
            tails_seen.append({"left_s": round(left, 2), "added": len(out[b].tokens) - n})
    backend._decode_tails = tails_counted
    _timed(backend, "_decode_tails", acc, "tails (encode+generate)",
           lambda items, out, tails, langs: len(tails))
    _timed(backend._fw, "find_alignment", acc, "word alignment",
           lambda tok, tokens, *a, **k: len(tokens))
    _timed(backend, "_features", acc, "features")
    _timed(backend, "decode_batch", acc, "decode_batch (all)", lambda items: len(items))
    _timed(offline, "_recover_gaps", acc, "gap recovery (whole)")
    content = [0]
    features = backend._features

    def features_counted(a):
        f, c = features(a)
        content[0] += c
        return f, c
    backend._features = features_counted
    t = time.monotonic()
    chunks = (audio[i:i + SR * 10] for i in range(0, audio.size, SR * 10))
    opts = OfflineOptions(**{"condition_on_previous_text": True, "temperature_fallback": False,
                             "batch": 2, **extra})
    text = " ".join(s.text for s in transcribe_chunks(chunks, sched, engine.vad, opts))
    wall = time.monotonic() - t
    engine.close()
    stats = sched.stats
    return {"wall_s": wall, "phases": {k: [round(v[0], 2), v[1]] for k, v in acc.items()},
            "encoder_frames": frames["padded"], "content_frames": content[0],
            "full_frames": FULL_FRAMES, "batches": stats.batches, "tails": tails_seen,
            "text": text}


def batched(audio: np.ndarray, threads: int, batch: int) -> dict:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from voxscope.engine.model_store import ModelStore

    model = WhisperModel(str(ModelStore().resolve("whisper-base")), device="cpu",
                         compute_type="int8", cpu_threads=threads)
    acc: dict = defaultdict(lambda: [0.0, 0])
    _timed(model, "encode", acc, "encode", lambda features: features.shape[0])

    class Timed:  # the CTranslate2 model object takes no new attributes: time it through a proxy
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            return getattr(self._inner, name)
    model.model = Timed(model.model)
    model.model.generate = model.model._inner.generate
    _timed(model.model, "generate", acc, "generate", lambda enc, prompts, **k: len(prompts))
    pipe = BatchedInferencePipeline(model)
    t = time.monotonic()
    segs = list(pipe.transcribe(audio, beam_size=5, batch_size=batch)[0])
    wall = time.monotonic() - t
    return {"wall_s": wall, "phases": {k: [round(v[0], 2), v[1]] for k, v in acc.items()},
            "segments": len(segs), "text": " ".join(s.text.strip() for s in segs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lang", default="en")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--systems", nargs="*", default=["vox", "batched"])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--vox-opts", default="{}", help="JSON: OfflineOptions fields")
    args = ap.parse_args()
    audio, spans = build(args.lang, args.minutes, 1.0)
    from tests.support import error_rate
    reference = " ".join(s[3] for s in spans)
    for system in args.systems:
        r = (vox(audio, args.threads, parse_settings(args.set), json.loads(args.vox_opts))
             if system == "vox"
             else batched(audio, args.threads, args.batch))
        r["err"] = round(100 * error_rate(args.lang, reference, r.pop("text")), 2)
        r["load_avg_1m"] = round(os.getloadavg()[0], 1)
        r["audio_s"] = round(audio.size / SR, 1)
        print(system, json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
