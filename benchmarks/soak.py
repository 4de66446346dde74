"""Memory soak under sustained mixed load: does the server's RSS stay flat?

Starts a real `voxscope serve`, then for `--minutes` keeps `--streams` real-time SDK streams busy
back to back (each session: 1-3 real clips, 2-35 s of speech, at real-time pace, models
alternating between paraformer-realtime-v2 and fun-asr-realtime) and submits one async file task
(paraformer-v2, `--file-seconds` of real speech served over HTTP) every `--file-every` seconds.
VmRSS of the server is sampled every `--sample-s` seconds; the result is the least-squares slope
of RSS after `--warmup` minutes, in MB/min, of every sample and of the per-minute minima (the
verdict, target < 2 MB/min: single samples jump by 100-250 MB while a beam search runs).

    python benchmarks/soak.py                      # 12 min, 2 streams, a 60 s file task every 2 min
    python benchmarks/soak.py --minutes 5 --file-every 60 --env MALLOC_MMAP_THRESHOLD_=33554432

`--env` passes environment variables to the server (to compare allocator settings).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_streaming import _proc_status, send_paced  # noqa: E402
from benchmarks.settings_args import parse_settings  # noqa: E402
from tests.files.helpers import AudioHost  # noqa: E402
from tests.support import ServerProcess, clip_pcm, manifest, wav_bytes  # noqa: E402

MODELS = ["paraformer-realtime-v2", "fun-asr-realtime"]
CLIPS = [c["id"] for c in manifest() if c["lang"] in ("en", "zh")]


def session_pcm(rng: random.Random) -> bytes:
    """1-3 real clips with 1 s pauses, 0.5 s of silence around them."""
    names = rng.sample(CLIPS, rng.randint(1, 3))
    gap = bytes(16000 * 2)
    return bytes(16000) + gap.join(clip_pcm(n) for n in names) + bytes(16000)


def stream_loop(url: str, seed: int, deadline: float, out: dict) -> None:
    from dashscope.audio.asr import Recognition, RecognitionCallback

    rng = random.Random(seed)

    class CB(RecognitionCallback):
        def __init__(self) -> None:
            self.error: str | None = None
            self.finals = 0

        def on_event(self, result) -> None:
            if result.get_sentence().get("end_time") is not None:
                self.finals += 1

        def on_error(self, result) -> None:
            self.error = f"{result.status_code} {result.code} {result.message}"

    while time.monotonic() < deadline:
        cb = CB()
        r = Recognition(model=rng.choice(MODELS), format="pcm", sample_rate=16000, callback=cb)
        try:
            r.start()
            send_paced(r.send_audio_frame, session_pcm(rng))
            r.stop()
        except Exception as exc:  # count it, keep the load going
            cb.error = cb.error or repr(exc)
        out["sessions"] = out.get("sessions", 0) + 1
        out["finals"] = out.get("finals", 0) + cb.finals
        if cb.error:
            out.setdefault("errors", []).append(cb.error)


def file_loop(host: AudioHost, every: float, seconds: float, deadline: float,
              out: dict) -> None:
    from dashscope.audio.asr import Transcription

    # `seconds` of real speech (clips with 1 s pauses), as one WAV over HTTP.
    gap = bytes(16000 * 2)
    pcm = gap.join(clip_pcm(n) for n in CLIPS)[: int(seconds * 16000) * 2]
    url = host.put("soak.wav", wav_bytes(pcm))
    next_at = time.monotonic() + 20  # after the streams have started
    while next_at < deadline:
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at = max(next_at + every, time.monotonic())  # a slow task delays, never bunches
        try:
            sub = Transcription.async_call(model="paraformer-v2", file_urls=[url])
            done = Transcription.wait(task=sub.output.task_id)
            status = done.output["task_status"]
        except Exception as exc:
            status = repr(exc)
        out.setdefault("file_tasks", []).append(status)


def slope_mb_per_min(samples: list[tuple[float, float]], after_s: float) -> float:
    pts = [(t, v) for t, v in samples if t >= after_s]
    if len(pts) < 3:
        return float("nan")
    t, v = np.array(pts).T
    return float(np.polyfit(t / 60, v, 1)[0])


def floor_slope_mb_per_min(samples: list[tuple[float, float]], after_s: float) -> float:
    """Slope of the per-minute minima: single beam-search decodes briefly map ~40 MB per
    hypothesis, so single samples are noisy; the floor shows what memory is kept."""
    by_minute: dict[int, tuple[float, float]] = {}
    for t, v in samples:
        if t >= after_s:
            m = int(t // 60)
            by_minute[m] = min(by_minute.get(m, (t, v)), (t, v), key=lambda x: x[1])
    return slope_mb_per_min(sorted(by_minute.values()), after_s)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--streams", type=int, default=2)
    ap.add_argument("--file-every", type=float, default=120.0, help="seconds between file tasks")
    ap.add_argument("--file-seconds", type=float, default=60.0, help="audio per file task")
    ap.add_argument("--warmup", type=float, default=3.0, help="minutes left out of the slope")
    ap.add_argument("--sample-s", type=float, default=15.0)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="server settings, e.g. max_batch=8")
    ap.add_argument("--env", nargs="*", default=[], metavar="KEY=VALUE",
                    help="environment of the server, e.g. MALLOC_ARENA_MAX=2")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    import dashscope

    overrides = parse_settings(args.set)
    env = dict(item.split("=", 1) for item in args.env)
    server = ServerProcess(config={"server": {"max_sessions": args.streams + 2,
                                              "fetch_allow_private": True, **overrides}},
                           env=env).start(timeout=300)
    assert server.proc is not None
    pid = server.proc.pid
    dashscope.api_key = "bench"
    dashscope.base_websocket_api_url = server.ws_inference
    dashscope.base_http_api_url = server.http + "/api/v1"
    host = AudioHost().start()
    t0 = time.monotonic()
    deadline = t0 + args.minutes * 60
    outs = [dict() for _ in range(args.streams)]
    files: dict = {}
    threads = [threading.Thread(target=stream_loop, args=(server.ws_inference, k, deadline, o),
                                daemon=True) for k, o in enumerate(outs)]
    threads.append(threading.Thread(target=file_loop, args=(host, args.file_every, args.file_seconds,
                                                            deadline, files), daemon=True))
    for th in threads:
        th.start()
        time.sleep(0.37)  # don't start everyone on the same frame
    samples: list[tuple[float, float]] = []
    try:
        while time.monotonic() < deadline:
            samples.append((time.monotonic() - t0, _proc_status(pid, "VmRSS")))
            print(f"{samples[-1][0]:6.0f} s  RSS {samples[-1][1]:6.0f} MB  sessions "
                  f"{sum(o.get('sessions', 0) for o in outs)}  file tasks "
                  f"{len(files.get('file_tasks', []))}", flush=True)
            time.sleep(args.sample_s)
        for th in threads:
            th.join(timeout=600)
        samples.append((time.monotonic() - t0, _proc_status(pid, "VmRSS")))
        health = server.health()
    finally:
        server.stop()
        host.stop()
    slope = slope_mb_per_min(samples, args.warmup * 60)
    result = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, "
                   f"load average {os.getloadavg()[0]:.1f}",
        "minutes": args.minutes, "streams": args.streams, "file_every_s": args.file_every,
        "env": env, "settings": overrides,
        "sessions": sum(o.get("sessions", 0) for o in outs),
        "finals": sum(o.get("finals", 0) for o in outs),
        "errors": [e for o in outs for e in o.get("errors", [])],
        "file_tasks": files.get("file_tasks", []),
        "threads_at_end": health.get("threads"),
        "rss_mb": [round(v) for _, v in samples],
        "rss_after_warmup_mb": round(next((v for t, v in samples if t >= args.warmup * 60),
                                          float("nan"))),
        "rss_end_mb": round(samples[-1][1]),
        "slope_mb_per_min_after_warmup": round(slope, 2),
        "floor_slope_mb_per_min_after_warmup": round(
            floor_slope_mb_per_min(samples, args.warmup * 60), 2),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    floor = result["floor_slope_mb_per_min_after_warmup"]
    # The floor is the verdict: one beam-search decode maps 100-250 MB for a moment, so a single
    # sample late in a run can tilt the plain fit by several MB/min either way.
    print(f"RSS slope after {args.warmup:g} min warm-up: {slope:.2f} MB/min; of the per-minute "
          f"minima {floor:.2f} MB/min (target < 2): {'flat' if floor < 2 else 'GROWING'}")


if __name__ == "__main__":
    main()
