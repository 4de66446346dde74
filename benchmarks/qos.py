"""QoS under mixed load: one realtime stream alone vs the same stream while an async file task runs.

Starts a real `voxscope serve` and, in one run (same machine, same load):

1. baseline: `--rounds` realtime streams one after another (official SDK `Recognition`, 100 ms
   chunks at real-time pace, the audio and the measurement of bench_streaming.py: first partial
   after each utterance's onset, final after its end), no other work;
2. mixed: an async file task (`Transcription`, paraformer-v2) on a `--file-minutes` file of real
   speech with 1.5 s pauses is submitted, and the same streams run again while it decodes;
3. the same file task alone, for its RTF without streams.

Prints p50 / p95 of both delays alone vs mixed, the deltas (target: p50 within +0.3 s) and the
file task's RTF with and without streams, how many decodes the server served per work class, and
the server's peak RSS (VmHWM) after the streams alone and at the end.

`--variant NAME:KEY=VALUE,...` (repeatable) runs all three phases once per variant, each on its own
server with those `server:` settings, one after another in the same command (before/after in one
run); without it, one variant with the defaults. `--set KEY=VALUE` applies to every variant.

    python benchmarks/qos.py --rounds 3 --file-minutes 5
    python benchmarks/qos.py --rounds 2 --file-minutes 4 \
        --variant shared:file_lane_threads=0 --variant lane1:file_lane_threads=1
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
from benchmarks.bench_streaming import _proc_status, build_stream, pct, run_client  # noqa: E402
from benchmarks.settings_args import parse_settings  # noqa: E402
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


def run_variant(name: str, settings: dict, url: str, duration: float, args) -> dict:
    """The three phases on one fresh server with `settings`."""
    import dashscope

    srv = ServerProcess(config={"server": {"fetch_allow_private": True, **settings}}).start(
        timeout=300)
    dashscope.api_key = "bench"
    dashscope.base_http_api_url = srv.http + "/api/v1"
    assert srv.proc is not None
    pid = srv.proc.pid
    res: dict = {"variant": name, "settings": settings,
                 "load_avg_start": round(os.getloadavg()[0], 1)}
    try:
        res["alone"] = stream_rounds(srv, args.rounds)
        res["peak_rss_mb_streams"] = round(_proc_status(pid, "VmHWM"))
        task = FileTask(url).start()
        time.sleep(2.0)  # the task is fetched and decoding when the first stream starts
        t0 = time.monotonic()
        res["mixed"] = stream_rounds(srv, args.rounds)
        streams_end = time.monotonic()
        took = task.join()
        res["peak_rss_mb_mixed"] = round(_proc_status(pid, "VmHWM"))
        # How much of the streaming the file task overlapped (1.0: it ran throughout).
        res["file_overlap"] = round(min(1.0, max(0.0, (min(task.ended, streams_end) - t0)
                                                 / (streams_end - t0))), 2)
        res["file_with_streams"] = {"status": task.status, "wall_s": round(took, 1),
                                    "rtf": round(took / duration, 3)}
        if not args.skip_file_alone:
            alone = FileTask(url).start()
            took = alone.join()
            res["file_alone"] = {"status": alone.status, "wall_s": round(took, 1),
                                 "rtf": round(took / duration, 3)}
        res["peak_rss_mb"] = round(_proc_status(pid, "VmHWM"))
        res["served"] = {m: v.get("served") for m, v in srv.health()["models"].items()}
        res["load_avg_end"] = round(os.getloadavg()[0], 1)
    finally:
        srv.stop()
    return res


def report(res: dict, duration: float) -> None:
    a, m = res["alone"], res["mixed"]
    print(f"\n== {res['variant']} {json.dumps(res['settings'])}: load avg {res['load_avg_start']}"
          f" -> {res['load_avg_end']}")
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
    print(f"peak RSS: {res['peak_rss_mb_streams']} MB after streams alone, "
          f"{res['peak_rss_mb_mixed']} MB after streams + file, {res['peak_rss_mb']} MB at the end")
    print(f"decodes per work class: {json.dumps(res['served'])}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3, help="streams (~35 s each) per phase")
    ap.add_argument("--file-minutes", type=float, default=5.0,
                    help="the file task's length; it must outlast the mixed phase's streams")
    ap.add_argument("--skip-file-alone", action="store_true")
    ap.add_argument("--json", type=Path, help="also write results here")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a server setting for every variant")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                    help="one server configuration to measure (repeatable; same run)")
    args = ap.parse_args()
    common = parse_settings(args.set)
    variants = []
    for spec in args.variant or ["default:"]:
        name, _, pairs = spec.partition(":")
        variants.append((name, {**common, **parse_settings([x for x in pairs.split(",") if x])}))

    folder = Path(tempfile.mkdtemp(prefix="voxscope-bench-qos-"))
    httpd, base = serve_folder(folder)
    pcm, _ = build(args.file_minutes)
    duration = len(pcm) / 32000
    (folder / "file.wav").write_bytes(wav_bytes(pcm))
    del pcm
    res: dict = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
                 "rounds": args.rounds, "file_s": round(duration, 1), "variants": []}
    try:
        build_stream(0)  # warm the VAD used to find reference onsets
        for name, settings in variants:
            out = run_variant(name, settings, f"{base}/file.wav", duration, args)
            res["variants"].append(out)
            report(out, duration)
    finally:
        httpd.shutdown()
    print(f"\nmachine: {res['machine']}")
    for v in res["variants"]:
        a, m = v["alone"], v["mixed"]
        print(f"{v['variant']:>12}: first partial {a['first_partial_p50']:.2f} -> "
              f"{m['first_partial_p50']:.2f} s ({m['first_partial_p50'] - a['first_partial_p50']:+.2f}),"
              f" final {a['final_p50']:.2f} -> {m['final_p50']:.2f} s "
              f"({m['final_p50'] - a['final_p50']:+.2f}), file RTF "
              f"{v['file_with_streams']['rtf']:.3f} with streams / "
              f"{v.get('file_alone', {}).get('rtf', float('nan')):.3f} alone, peak RSS "
              f"{v['peak_rss_mb']} MB, load {v['load_avg_start']} -> {v['load_avg_end']}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
