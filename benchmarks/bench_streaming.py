"""Streaming latency and capacity through the official SDK, at real-time pace.

Starts a real `voxscope serve`, then for N = 1, 2, 4, ... concurrent clients streams real speech
(3200-byte PCM chunks every 100 ms, like the SDK samples) and measures, per sentence:

- first-partial delay: wall time from the moment the speech onset was *sent* to the first partial;
- final delay: wall time from the moment the sentence's last speech was sent to its final result;
- lag: how far results trail the audio (a stream "keeps up" if its finals stay within target).

Speech onset/end times come from Silero VAD run offline on the same audio (the reference).
Also reports peak server RSS, RSS after many short sessions in a row, and plain faster-whisper's
offline real-time factor on the same audio in the same run, for comparison.

    python benchmarks/bench_streaming.py --streams 1 2 4 6 --sessions 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.device import add_device_args, compute_type, models_config  # noqa: E402
from benchmarks.settings_args import parse_settings, split_env  # noqa: E402
from tests.support import ServerProcess, clip, pcm16, sdk_start_waits  # noqa: E402

CLIPS = ["en_librispeech_1995-1837-0001", "zh_funasr_asr_example", "en_jfk_inaugural",
         "zh_paddlespeech_zh", "en_ljspeech_LJ001-0001", "en_beckett"]
CHUNK = 3200  # bytes = 100 ms of 16 kHz s16le


def build_stream(seed: int, clips: list[str] | None = None) -> tuple[bytes, list[tuple[float, float]]]:
    """Three clips separated by 2 s pauses; returns PCM and the speech regions (seconds)."""
    from voxscope.engine.model_store import ModelStore
    from voxscope.engine.vad import SileroVad

    rng = np.random.default_rng(seed)
    names = list(rng.choice(clips or CLIPS, size=3, replace=False))
    gap = bytes(2 * 16000 * 2)
    pcm = bytes(16000 * 2) + gap.join(pcm16(str(clip(n)["file"]), 16000) for n in names) + gap
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    probs = SileroVad(ModelStore().silero_vad_path()).speech_probs(audio)
    regions: list[tuple[float, float]] = []
    speech = probs >= 0.5
    i = 0
    while i < len(speech):
        if speech[i]:
            j = i
            while j < len(speech) and (speech[j] or speech[j:j + 40].any()):  # merge < 1.3 s gaps
                j += 1
            regions.append((i * 0.032, j * 0.032))
            i = j
        i += 1
    return pcm, regions


def send_paced(send, pcm: bytes, stop=lambda: False) -> float:
    """Send `pcm` in 100 ms chunks at real-time pace (until `stop()`); returns the start time."""
    t0 = time.monotonic()
    for k, i in enumerate(range(0, len(pcm), CHUNK)):
        if stop():
            break
        send(pcm[i:i + CHUNK])
        time.sleep(max(0.0, t0 + (k + 1) * 0.1 - time.monotonic()))
    return t0


def sdk_stream(url_ws: str, pcm: bytes, out: dict) -> tuple[float, list[tuple[float, dict]]]:
    """One SDK `Recognition` stream of `pcm` at real-time pace: its start time and every result
    event (monotonic arrival time, sentence). An error (a refused stream fails in start() or on a
    later frame) ends the stream early and is written to out["error"]."""
    import dashscope
    from dashscope.audio.asr import Recognition, RecognitionCallback

    dashscope.base_websocket_api_url = url_ws
    dashscope.api_key = "bench"
    events: list[tuple[float, dict]] = []

    class CB(RecognitionCallback):
        def on_event(self, result) -> None:
            events.append((time.monotonic(), result.get_sentence()))

        def on_error(self, result) -> None:
            out["error"] = f"{result.status_code} {result.code}: {result.message}"

    r = Recognition(model="paraformer-realtime-v2", format="pcm", sample_rate=16000,
                    callback=CB())
    t0 = time.monotonic()
    try:
        sdk_start_waits(r)  # the SDK's start race (tests/support.py)
        r.start()
        t0 = send_paced(r.send_audio_frame, pcm, stop=lambda: "error" in out)
        if "error" not in out:
            r.stop()
    except Exception as exc:
        out.setdefault("error", f"{type(exc).__name__}: {exc}")
    return t0, events


def region_delays(t0: float, events: list[tuple[float, dict]], regions) -> dict:
    """First-partial delay after each region's onset and final delay after its end (seconds)."""
    first_partial, final_delay = [], []
    for onset, end in regions:
        partials = [t - t0 for t, s in events if s["end_time"] is None and s["text"]
                    and onset - 0.5 <= (s["begin_time"] / 1000) <= end]
        finals = [t - t0 for t, s in events if s["end_time"] is not None
                  and abs(s["end_time"] / 1000 - end) < 1.5]
        if partials:
            first_partial.append(min(partials) - onset)
        if finals:
            final_delay.append(min(finals) - end)
    return {"first_partial": first_partial, "final": final_delay,
            "finals": sum(1 for _, s in events if s["end_time"] is not None),
            "regions": len(regions), "covered": len(final_delay)}


def run_client(url_ws: str, pcm: bytes, regions, out: dict) -> None:
    t0, events = sdk_stream(url_ws, pcm, out)
    out.update(region_delays(t0, events, regions))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(values, q))


def _proc_status(pid: int, field: str) -> float:
    """A memory figure of a process in MB, from /proc (VmRSS: current, VmHWM: peak)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system, all threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        # Fields after the ")" that closes the command name: utime and stime are 14th and 15th.
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> list[tuple[str, float]]:
    """Each thread of a process (name, CPU seconds), busiest first: a pool's worker threads that
    spin show up as many threads with similar CPU time."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            head, _, tail = (task / "stat").read_text().rpartition(")")
        except OSError:
            continue  # the thread ended
        fields = tail.split()
        name = head.split("(", 1)[1]
        out.append((name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")))
    return sorted(out, key=lambda t: -t[1])


def offline_rtf(pcm: bytes, device: str = "cpu", compute_type: str = "int8") -> float:
    from faster_whisper import WhisperModel

    from voxscope.engine.model_store import ModelStore

    model = WhisperModel(str(ModelStore().resolve("whisper-base")), device=device,
                         compute_type=compute_type)
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    t = time.monotonic()
    list(model.transcribe(audio, beam_size=5)[0])
    return (time.monotonic() - t) / (len(audio) / 16000)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 6])
    ap.add_argument("--sessions", type=int, default=200, help="short sessions for the RSS soak")
    ap.add_argument("--json", type=Path, help="also write results here")
    ap.add_argument("--skip-offline", action="store_true",
                    help="skip plain faster-whisper's offline RTF (CPU measurements of the server)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="server settings to try, e.g. partial_interval_s=1.0 max_batch=8")
    add_device_args(ap)
    args = ap.parse_args()

    env, overrides = split_env(parse_settings(args.set))  # VOXSCOPE_*: the server's environment
    server = ServerProcess(config={"server": {"max_sessions": max(args.streams) + 2,
                                              **overrides},
                                   "models": models_config(args)}, env=env).start()
    results: dict = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
                     "python": platform.python_version(), "runs": []}
    try:
        pcm0, _ = build_stream(0)
        results["device"] = f"{args.device} {compute_type(args)}"
        if not args.skip_offline:
            results["faster_whisper_offline_rtf"] = offline_rtf(pcm0, args.device,
                                                                compute_type(args))
            print(f"plain faster-whisper offline (beam 5), same audio: RTF "
                  f"{results['faster_whisper_offline_rtf']:.3f}")
        print(f"{'streams':>7} {'1st partial p50/p95 (s)':>24} {'final p50/p95 (s)':>20} "
              f"{'finals':>8} {'errors':>6} {'server CPU-s':>12} {'load avg':>8}")
        for n in args.streams:
            outs = [dict() for _ in range(n)]
            threads = []
            for k in range(n):
                pcm, regions = build_stream(k + 1)
                th = threading.Thread(target=run_client,
                                      args=(server.ws_inference, pcm, regions, outs[k]))
                threads.append(th)
            # The server's CPU time over the level: what the streams cost, idle thread pools'
            # spinning included (a GPU run found most of it was that).
            cpu0 = cpu_seconds(server.proc.pid)
            for th in threads:
                th.start()
                time.sleep(0.37)  # don't start everyone on the same frame
            for th in threads:
                th.join()
            cpu_s = cpu_seconds(server.proc.pid) - cpu0
            fp = [v for o in outs for v in o.get("first_partial", [])]
            fd = [v for o in outs for v in o.get("final", [])]
            errors = [o["error"] for o in outs if "error" in o]
            finals = sum(o.get("finals", 0) for o in outs)
            regions = sum(o.get("regions", 0) for o in outs)
            row = {"streams": n, "first_partial_p50": pct(fp, 50), "first_partial_p95": pct(fp, 95),
                   "final_p50": pct(fd, 50), "final_p95": pct(fd, 95), "finals": finals,
                   "speech_regions": regions, "errors": errors,
                   "server_cpu_s": round(cpu_s, 2), "server_cpu_s_per_stream": round(cpu_s / n, 2),
                   "load_avg_1m": os.getloadavg()[0]}
            results["runs"].append(row)
            print(f"{n:>7} {row['first_partial_p50']:>11.2f} / {row['first_partial_p95']:<10.2f} "
                  f"{row['final_p50']:>9.2f} / {row['final_p95']:<8.2f} {finals:>4}/{regions:<3} "
                  f"{len(errors):>6} {cpu_s:>12.1f} {row['load_avg_1m']:>8.2f}")
        results["server_peak_rss_mb"] = _proc_status(server.proc.pid, "VmHWM")
        threads_cpu = thread_cpu_seconds(server.proc.pid)
        results["server_threads_cpu_s"] = [[n, round(c, 2)] for n, c in threads_cpu]
        print(f"server threads: {len(threads_cpu)}; busiest (CPU-s): "
              + ", ".join(f"{n} {c:.1f}" for n, c in threads_cpu[:8]))
        # Soak: many short sessions in a row; RSS must not keep growing.
        import dashscope
        from dashscope.audio.asr import Recognition

        dashscope.base_websocket_api_url = server.ws_inference
        short = pcm16(str(clip("en_ldc93s1")["file"]), 16000)
        tmp = server.workdir / "short.pcm"
        tmp.write_bytes(short)
        rss = []
        for i in range(args.sessions):
            res = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000,
                              callback=None).call(str(tmp))
            assert res.status_code == 200, res.message
            if i in (9, args.sessions // 2, args.sessions - 1):
                rss.append(_proc_status(server.proc.pid, "VmRSS"))
        results["soak"] = {"sessions": args.sessions, "rss_mb_after_10_half_end": rss}
        print(f"RSS after 10 / {args.sessions // 2} / {args.sessions} sessions: "
              + " / ".join(f"{v:.0f} MB" for v in rss)
              + f"; peak during streaming {results['server_peak_rss_mb']:.0f} MB")
        print(f"health after soak: {json.dumps(server.health()['models'])}")
    finally:
        server.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
