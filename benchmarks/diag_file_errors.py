"""Where plain faster-whisper and voxscope's file path differ in error, clip by clip.

Builds `bench_file_throughput.py`'s file (real clips, each followed by a pause, repeated), decodes
it with sequential faster-whisper (`transcribe`, beam 5) and with `engine.offline.transcribe_chunks`
(the `voxscope transcribe` / file-task path), assigns each output segment to the clip occurrence
its middle falls in (clips are separated by pauses, so segments rarely span two), and prints the
error of each clip occurrence in both systems, summed per clip, with the texts where they differ.
Raw results go to `--out` (JSON) for further slicing.

    python benchmarks/diag_file_errors.py --lang zh --minutes 5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.settings_args import parse_settings  # noqa: E402
from tests.support import clip_pcm, error_rate, manifest  # noqa: E402

SR = 16000


def build(lang: str, minutes: float, pause_s: float):
    """As bench_file_throughput.build, but also where each clip occurrence lies (seconds)."""
    clips = [c for c in manifest() if c["lang"] == lang]
    gap = np.zeros(int(pause_s * SR), dtype="<i2")
    parts, spans, total = [gap], [], pause_s
    while total < minutes * 60:
        for c in clips:
            pcm = np.frombuffer(clip_pcm(c["id"]), "<i2")
            spans.append((c["id"], total, total + pcm.size / SR, c["reference"]))
            parts += [pcm, gap]
            total += pcm.size / SR + pause_s
    return np.concatenate(parts).astype(np.float32) / 32768, spans


def fw_segments(audio: np.ndarray, threads: int, **kw) -> list[tuple[float, float, str]]:
    from faster_whisper import WhisperModel

    from voxscope.engine.model_store import ModelStore

    model = WhisperModel(str(ModelStore().resolve("whisper-base")), device="cpu",
                         compute_type="int8", cpu_threads=threads)
    segs = model.transcribe(audio, beam_size=5, **kw)[0]
    return [(s.start, s.end, s.text.strip()) for s in segs]


def vox_segments(audio: np.ndarray, threads: int, settings: dict,
                 **opts) -> list[tuple[float, float, str]]:
    from voxscope.config import load_settings
    from voxscope.engine.hub import Engine
    from voxscope.engine.offline import OfflineOptions, transcribe_chunks

    cfg = Path(tempfile.mkdtemp(prefix="voxscope-diag-")) / "config.yaml"
    cfg.write_text("{}")
    engine = Engine(load_settings(cfg, cpu_threads=threads, **settings))
    chunks = (audio[i:i + SR * 10] for i in range(0, audio.size, SR * 10))
    out = [(s.begin, s.end, s.text) for s in transcribe_chunks(
        chunks, engine.scheduler("whisper-base"), engine.vad, OfflineOptions(**opts))]
    engine.close()
    return out


def assign(segments, spans) -> list[str]:
    """Text per clip occurrence: each segment goes to the occurrence nearest its middle."""
    texts = [""] * len(spans)
    for start, end, text in segments:
        mid = (start + end) / 2
        i = min(range(len(spans)), key=lambda k: 0 if spans[k][1] <= mid <= spans[k][2]
                else min(abs(mid - spans[k][1]), abs(mid - spans[k][2])))
        texts[i] = (texts[i] + " " + text).strip()
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lang", default="zh")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--systems", nargs="*", default=["fw", "vox"],
                    help="fw, vox, or any name (decoded as vox with --vox-opts/--set)")
    ap.add_argument("--fw-kw", default="{}", help="JSON: extra faster-whisper transcribe args")
    ap.add_argument("--vox-opts", default="{}", help="JSON: OfflineOptions fields")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--redo", nargs="*", default=[], help="systems to decode again despite --out")
    args = ap.parse_args()
    audio, spans = build(args.lang, args.minutes, 1.0)
    reference = " ".join(s[3] for s in spans)
    result: dict = {"lang": args.lang, "spans": spans}
    if args.out and args.out.exists():  # reuse systems already decoded (--out of an earlier run)
        result.update({k: v for k, v in json.loads(args.out.read_text()).items()
                       if k in args.systems and k not in args.redo})
    for system in args.systems:
        if system in result:
            print(f"{system}: err {100 * result[system]['err']:.2f} % (from {args.out})")
            continue
        t = time.monotonic()
        if system.startswith("fw"):
            segs = fw_segments(audio, args.threads, **json.loads(args.fw_kw))
        else:
            segs = vox_segments(audio, args.threads, parse_settings(args.set),
                                **json.loads(args.vox_opts))
        per = assign(segs, spans)
        total = " ".join(s[2] for s in segs)
        result[system] = {"segments": segs, "per_clip": per, "wall_s": time.monotonic() - t,
                          "err": error_rate(args.lang, reference, total)}
        print(f"{system}: err {100 * result[system]['err']:.2f} %, "
              f"{time.monotonic() - t:.0f} s", flush=True)
        if args.out:
            args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1))
    if len(args.systems) < 2:
        return
    a, b = args.systems[:2]
    by_clip: dict[str, list[float]] = {}
    for k, (cid, start, _, ref) in enumerate(spans):
        ea = error_rate(args.lang, ref, result[a]["per_clip"][k])
        eb = error_rate(args.lang, ref, result[b]["per_clip"][k])
        by_clip.setdefault(cid, [0.0, 0.0, 0])
        by_clip[cid][0] += ea
        by_clip[cid][1] += eb
        by_clip[cid][2] += 1
        if result[a]["per_clip"][k] != result[b]["per_clip"][k]:
            print(f"{start:7.1f} s {cid} {a} {ea:.2f} / {b} {eb:.2f}\n"
                  f"   {a}: {result[a]['per_clip'][k]}\n   {b}: {result[b]['per_clip'][k]}")
    for cid, (ea, eb, n) in by_clip.items():
        print(f"{cid}: {n} times, mean error {a} {100 * ea / n:.2f} % / {b} {100 * eb / n:.2f} %")


if __name__ == "__main__":
    main()
