"""File recognition speed: async tasks on long files, the sync API, and SSE first-chunk time.

Starts a real `voxscope serve`, serves the audio from a local HTTP server, and measures through
the official `dashscope` SDK:

- async task (`QwenTranscription.async_call` + `wait`) on files of `--minutes` lengths built from
  the real clips in shared/audio: wall time, real-time factor, and the server's RSS (peak while
  the task ran) — which should stay flat as the file grows, since audio is streamed;
- plain faster-whisper (`WhisperModel.transcribe`, defaults, beam 5) on the same files in a
  child process, with its wall time and peak RSS;
- the sync API (`MultiModalConversation.call`) on a 30 s clip, and time to the first SSE chunk
  with `stream=True`.

    python benchmarks/bench_file_tasks.py --minutes 5 15 30
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_offline import build  # noqa: E402
from tests.support import ServerProcess, error_rate, wav_bytes  # noqa: E402

FW_CHILD = """
import sys, time, resource
from faster_whisper import WhisperModel
from voxscope.engine.model_store import ModelStore
m = WhisperModel(str(ModelStore().resolve("whisper-base")), device="cpu", compute_type="int8")
t = time.monotonic()
text = " ".join(s.text.strip() for s in m.transcribe(sys.argv[1], beam_size=5)[0])
took = time.monotonic() - t
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(text)
"""


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve_folder(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="*", default=[5, 15, 30],
                    help="file lengths for the async-task part (none: only the sync part)")
    ap.add_argument("--skip-faster-whisper", action="store_true")
    args = ap.parse_args()

    import dashscope
    from dashscope import MultiModalConversation
    from dashscope.audio.qwen_asr import QwenTranscription

    folder = Path(tempfile.mkdtemp(prefix="voxscope-bench-files-"))
    httpd, base = serve_folder(folder)
    srv = ServerProcess(config={"server": {"fetch_allow_private": True}}).start(timeout=300)
    dashscope.api_key = "bench"
    dashscope.base_http_api_url = srv.http + "/api/v1"
    assert srv.proc is not None
    pid = srv.proc.pid
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.platform()}")
    rows = []
    try:
        for minutes in args.minutes:
            pcm, reference = build(minutes)
            duration = len(pcm) / 32000
            name = f"long_{minutes:g}min.wav"
            (folder / name).write_bytes(wav_bytes(pcm))
            del pcm
            peak = rss_mb(pid)
            stop = threading.Event()

            def sample(stop: threading.Event = stop) -> None:
                nonlocal peak
                while not stop.wait(0.5):
                    peak = max(peak, rss_mb(pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            t = time.monotonic()
            sub = QwenTranscription.async_call(model="qwen3-asr-flash-filetrans",
                                               file_url=f"{base}/{name}")
            done = QwenTranscription.wait(task=sub.output.task_id)
            took = time.monotonic() - t
            stop.set()
            sampler.join()
            import httpx

            doc = httpx.get(done.output["result"]["transcription_url"], timeout=60).json()
            text = doc["transcripts"][0]["text"]
            row = {"audio_min": round(duration / 60, 1), "status": done.output["task_status"],
                   "voxscope_s": round(took, 1), "voxscope_rtf": round(took / duration, 3),
                   "voxscope_server_peak_rss_mb": round(peak),
                   "voxscope_wer": round(error_rate("en", reference, text), 3)}
            if not args.skip_faster_whisper:
                out = subprocess.run([sys.executable, "-c", FW_CHILD, str(folder / name)],
                                     check=True, capture_output=True, text=True).stdout
                first, _, fw_text = out.partition("\n")
                fw_s, fw_rss = (float(x) for x in first.split())
                row.update({"faster_whisper_s": round(fw_s, 1),
                            "faster_whisper_rtf": round(fw_s / duration, 3),
                            "faster_whisper_peak_rss_mb": round(fw_rss),
                            "faster_whisper_wer": round(error_rate("en", reference, fw_text), 3),
                            "ratio": round(took / fw_s, 2)})
            print(json.dumps(row))
            rows.append(row)
            (folder / name).unlink()

        # Sync API: a 30 s clip, whole answer and first SSE chunk.
        pcm, _ = build(0.5)
        pcm = pcm[: 30 * 32000]
        (folder / "clip30.wav").write_bytes(wav_bytes(pcm))
        msgs = [{"role": "system", "content": [{"text": ""}]},
                {"role": "user", "content": [{"audio": f"{base}/clip30.wav"}]}]
        sync_s, first_s, total_s = [], [], []
        for _ in range(3):
            t = time.monotonic()
            r = MultiModalConversation.call(model="qwen3-asr-flash", messages=msgs,
                                            result_format="message")
            assert r.status_code == 200, r
            sync_s.append(time.monotonic() - t)
            t = time.monotonic()
            first = None
            for chunk in MultiModalConversation.call(model="qwen3-asr-flash", messages=msgs,
                                                     result_format="message", stream=True,
                                                     incremental_output=True):
                assert chunk.status_code == 200, chunk
                if first is None:
                    first = time.monotonic() - t
            first_s.append(first or float("nan"))
            total_s.append(time.monotonic() - t)
        sync = {"sync_30s_clip_s_median": round(sorted(sync_s)[1], 2),
                "sse_first_chunk_s_median": round(sorted(first_s)[1], 2),
                "sse_last_chunk_s_median": round(sorted(total_s)[1], 2)}
        print(json.dumps(sync))
    finally:
        srv.stop()
        httpd.shutdown()


if __name__ == "__main__":
    main()
