"""QoS under mixed load: one realtime stream alone vs the same stream while an async file task runs.

Starts a real `voxscope serve` and, in one run (same machine, same load):

1. baseline: `--rounds` realtime streams one after another (official SDK `Recognition`, 100 ms
   chunks at real-time pace, the audio and the measurement of bench_streaming.py: first partial
   after each utterance's onset, final after its end), no other work;
2. mixed: an async file task (`Transcription`, paraformer-v2) on a `--file-minutes` file of real
   speech with 1.5 s pauses is submitted, and the same streams run again while it decodes;
3. the same file task alone, for its RTF without streams.

Prints p50 / p95 of both delays alone vs mixed, the deltas (target: p50 within +0.3 s) and the
file task's RTF with and without streams, plus how many decodes the server served per work class.

    python benchmarks/qos.py --rounds 3 --file-minutes 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_file_tasks import serve_folder  # noqa: E402
from benchmarks.bench_offline import build  # noqa: E402
from benchmarks.bench_streaming import build_stream, pct, run_client  # noqa: E402
from tests.support import ServerProcess, wav_bytes  # noqa: E402


def stream_rounds(srv: ServerProcess, rounds: int) -> dict:
    """`rounds` single streams one after another; their delays pooled."""
    fp: list[float] = []
    fd: list[float] = []
    finals = regions = 0
    errors = []
    for k in range(rounds):
        pcm, regs = build_stream(k + 1)
        out: dict = {}
        run_client(srv.ws_inference, pcm, regs, out)
        fp += out.get("first_partial", [])
        fd += out.get("final", [])
        finals += out.get("finals", 0)
        regions += out.get("regions", 0)
        if "error" in out:
            errors.append(out["error"])
    return {"first_partial_p50": pct(fp, 50), "first_partial_p95": pct(fp, 95),
            "final_p50": pct(fd, 50), "final_p95": pct(fd, 95), "finals": finals,
            "speech_regions": regions, "errors": errors, "first_partials": fp, "finals_s": fd}


class FileTask:
    """One async file task in a thread: submit, wait, record wall time and end time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.started = self.ended = 0.0
        self.status = ""
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from dashscope.audio.asr import Transcription

        self.started = time.monotonic()
        sub = Transcription.async_call(model="paraformer-v2", file_urls=[self.url])
        done = Transcription.wait(task=sub.output.task_id)
        self.ended = time.monotonic()
        self.status = (done.output or {}).get("task_status", f"{done.status_code} {done.message}")

    def start(self) -> FileTask:
        self.thread.start()
        return self

    def join(self) -> float:
        self.thread.join()
        return self.ended - self.started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3, help="streams (~35 s each) per phase")
    ap.add_argument("--file-minutes", type=float, default=5.0,
                    help="the file task's length; it must outlast the mixed phase's streams")
    ap.add_argument("--skip-file-alone", action="store_true")
    ap.add_argument("--json", type=Path, help="also write results here")
    args = ap.parse_args()

    import dashscope

    folder = Path(tempfile.mkdtemp(prefix="voxscope-bench-qos-"))
    httpd, base = serve_folder(folder)
    pcm, _ = build(args.file_minutes)
    duration = len(pcm) / 32000
    (folder / "file.wav").write_bytes(wav_bytes(pcm))
    del pcm
    srv = ServerProcess(config={"server": {"fetch_allow_private": True}}).start(timeout=300)
    dashscope.api_key = "bench"
    dashscope.base_http_api_url = srv.http + "/api/v1"
    res: dict = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, "
                            f"load avg {os.getloadavg()[0]:.1f} at start",
                 "rounds": args.rounds, "file_s": round(duration, 1)}
    try:
        build_stream(0)  # warm the VAD used to find reference onsets
        res["alone"] = stream_rounds(srv, args.rounds)
        task = FileTask(f"{base}/file.wav").start()
        time.sleep(2.0)  # the task is fetched and decoding when the first stream starts
        t0 = time.monotonic()
        res["mixed"] = stream_rounds(srv, args.rounds)
        streams_end = time.monotonic()
        took = task.join()
        # How much of the streaming the file task overlapped (1.0: it ran throughout).
        res["file_overlap"] = round(min(1.0, max(0.0, (min(task.ended, streams_end) - t0)
                                                 / (streams_end - t0))), 2)
        res["file_with_streams"] = {"status": task.status, "wall_s": round(took, 1),
                                    "rtf": round(took / duration, 3)}
        if not args.skip_file_alone:
            alone = FileTask(f"{base}/file.wav").start()
            took = alone.join()
            res["file_alone"] = {"status": alone.status, "wall_s": round(took, 1),
                                 "rtf": round(took / duration, 3)}
        res["served"] = {m: v.get("served") for m, v in srv.health()["models"].items()}
        res["load_avg_end"] = round(os.getloadavg()[0], 1)
    finally:
        srv.stop()
        httpd.shutdown()

    a, m = res["alone"], res["mixed"]
    print(f"machine: {res['machine']}; load avg at end {res['load_avg_end']}")
    print(f"{'':>22} {'alone':>14} {'with file task':>16} {'delta':>8}")
    for name in ("first_partial", "final"):
        for q in ("p50", "p95"):
            k = f"{name}_{q}"
            print(f"{k:>22} {a[k]:>12.2f} s {m[k]:>14.2f} s {m[k] - a[k]:>+7.2f} s")
    print(f"{'finals / regions':>22} {a['finals']:>10}/{a['speech_regions']:<3} "
          f"{m['finals']:>12}/{m['speech_regions']:<3}")
    d_fp = m["first_partial_p50"] - a["first_partial_p50"]
    d_fd = m["final_p50"] - a["final_p50"]
    print(f"target: p50 deltas <= +0.30 s -> first partial {d_fp:+.2f}, final {d_fd:+.2f}")
    fw = res["file_with_streams"]
    print(f"file task ({duration:.0f} s): RTF {fw['rtf']:.3f} with streams ({fw['status']}, "
          f"overlapped {res['file_overlap']:.0%} of the streaming)"
          + (f", {res['file_alone']['rtf']:.3f} alone" if "file_alone" in res else ""))
    print(f"decodes per work class: {json.dumps(res['served'])}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
