"""Qwen realtime (OmniRealtimeConversation) latency at real-time pace, 1 and N concurrent sessions.

For each session real speech (three clips with 2 s pauses) is appended as 100 ms base64 chunks at
real-time pace in server-VAD mode (silence_duration_ms as given). Measured per utterance:

- first text: wall time from sending the speech onset to the first `...transcription.text`
  (target <= 0.8 s);
- completed: wall time from sending the end of speech to `...transcription.completed`
  (target <= silence_duration_ms + 0.4 s).

Speech onset/end come from Silero VAD run offline on the same audio.

    python benchmarks/bench_qwen_realtime.py --sessions 1 4
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_streaming import build_stream, pct  # noqa: E402

from tests.support import ServerProcess  # noqa: E402

CHUNK = 3200


def run_session(url: str, pcm: bytes, regions, silence_ms: int, out: dict) -> None:
    import dashscope
    from dashscope.audio.qwen_omni import MultiModality, OmniRealtimeCallback, OmniRealtimeConversation
    from dashscope.audio.qwen_omni.omni_realtime import TranscriptionParams

    dashscope.api_key = "bench"
    events: list[tuple[float, dict]] = []

    class CB(OmniRealtimeCallback):
        def on_event(self, message) -> None:
            events.append((time.monotonic(), message))

    conv = OmniRealtimeConversation(model="qwen3-asr-flash-realtime", url=url, callback=CB())
    conv.connect()
    conv.update_session(output_modalities=[MultiModality.TEXT],
                        enable_input_audio_transcription=True,
                        turn_detection_silence_duration_ms=silence_ms,
                        transcription_params=TranscriptionParams(sample_rate=16000,
                                                                 input_audio_format="pcm"))
    time.sleep(0.2)
    t0 = time.monotonic()
    for k, i in enumerate(range(0, len(pcm), CHUNK)):
        conv.append_audio(base64.b64encode(pcm[i:i + CHUNK]).decode())
        time.sleep(max(0.0, t0 + (k + 1) * 0.1 - time.monotonic()))
    conv.end_session(timeout=60)
    conv.close()
    items: dict[str, dict] = {}
    for t, e in events:
        item = e.get("item_id")
        if not item:
            continue
        rec = items.setdefault(item, {})
        if e["type"] == "input_audio_buffer.speech_started":
            rec["start_ms"] = e["audio_start_ms"]
        elif e["type"] == "conversation.item.input_audio_transcription.text" and "text_t" not in rec:
            rec["text_t"] = t - t0
        elif e["type"] == "conversation.item.input_audio_transcription.completed":
            rec["done_t"] = t - t0
            rec["end_ms"] = next((x["audio_end_ms"] for _, x in events
                                  if x.get("item_id") == item and "audio_end_ms" in x), None)
    first_text, completed = [], []
    for onset, end in regions:
        for rec in items.values():
            if "start_ms" in rec and abs(rec["start_ms"] / 1000 - onset) < 1.0:
                if "text_t" in rec:
                    first_text.append(rec["text_t"] - onset)
                if "done_t" in rec:
                    completed.append(rec["done_t"] - end)
                break
    out.update(first_text=first_text, completed=completed, items=len(items), regions=len(regions))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--silence-ms", type=int, default=800)
    args = ap.parse_args()
    server = ServerProcess(config={"server": {"max_sessions": max(args.sessions) + 2}}).start()
    url = f"ws://127.0.0.1:{server.port}/api-ws/v1/realtime"
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus; silence_duration_ms="
          f"{args.silence_ms} (completed target <= {args.silence_ms / 1000 + 0.4:.1f} s)")
    print(f"{'sessions':>8} {'first text p50/p95 (s)':>24} {'completed p50/p95 (s)':>24} {'items':>7}")
    rows = []
    try:
        for n in args.sessions:
            outs = [dict() for _ in range(n)]
            threads = []
            for k in range(n):
                pcm, regions = build_stream(100 + k)
                threads.append(threading.Thread(target=run_session,
                                                args=(url, pcm, regions, args.silence_ms, outs[k])))
            for th in threads:
                th.start()
                time.sleep(0.37)
            for th in threads:
                th.join()
            ft = [v for o in outs for v in o.get("first_text", [])]
            cd = [v for o in outs for v in o.get("completed", [])]
            row = {"sessions": n, "first_text_p50": pct(ft, 50), "first_text_p95": pct(ft, 95),
                   "completed_p50": pct(cd, 50), "completed_p95": pct(cd, 95),
                   "items": sum(o.get("items", 0) for o in outs),
                   "regions": sum(o.get("regions", 0) for o in outs)}
            rows.append(row)
            print(f"{n:>8} {row['first_text_p50']:>11.2f} / {row['first_text_p95']:<10.2f} "
                  f"{row['completed_p50']:>11.2f} / {row['completed_p95']:<10.2f} "
                  f"{row['items']:>3}/{row['regions']:<3}")
    finally:
        server.stop()
    print(json.dumps(rows, indent=2, default=lambda v: None if np.isnan(v) else v))


if __name__ == "__main__":
    main()
