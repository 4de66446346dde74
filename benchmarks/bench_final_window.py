"""Accuracy of realtime finals per `final_window` through the real server (issue 12, Streams).

One command: starts one `voxscope serve` per variant (default `full:final_window=full` and
`short:final_window=short`), all in the same run, and streams through the official SDK:

- every clip of shared/audio/manifest.jsonl alone (0.5 s of silence before, 2 s after), once with
  the language given as a user would (`language_hints` on paraformer-realtime-v2; Spanish, which
  that model does not list, through gummy-realtime-v1's `source_language`) and once with the
  language left to detection (paraformer-realtime-v2; gummy for Spanish);
- multi-sentence streams: clips of one language joined with 2 s pauses (as bench_streaming.py
  builds them), language given.

Finals' text (every sentence-end result, joined) is scored against the references: WER for
en/de/es/fr, CER for zh/ja (tests.support.error_rate), per item and in total (errors summed over
reference length). Reference point in the same run: plain faster-whisper (beam 5, same model,
2 threads) on the same audio with the same language. Also the server's CPU seconds for all its
sessions, and how often the short-window guard re-decoded a final in the full window (/metrics).

Pace: `--pace 1` is real time; finals should not depend on it (sentence boundaries come from the
audio's VAD frames, not the clock), so `--pace 2` gives the same finals sooner; previews do change
with pace, and are not scored here. (Where a speculative final is asked for depends on timing:
benchmarks/RESULTS.md saw one sentence differ in one of five runs.)

    python benchmarks/bench_final_window.py
    python benchmarks/bench_final_window.py --variant short:final_window=short --pace 2
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

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_streaming import CHUNK  # noqa: E402
from benchmarks.settings_args import parse_settings  # noqa: E402
from tests.support import (  # noqa: E402
    ServerProcess,
    clip,
    error_rate,
    manifest,
    norm_chars,
    norm_words,
    pcm16,
    sdk_start_waits,
)

PARAFORMER_LANGS = {"zh", "yue", "en", "ja", "ko", "de", "fr", "ru"}
STREAMS = {  # multi-sentence streams: (name, language, clips joined with 2 s pauses)
    "en_stream_a": ("en", ["en_librispeech_1995-1837-0001", "en_jfk_inaugural", "en_beckett"]),
    "en_stream_b": ("en", ["en_ljspeech_LJ001-0001", "en_fleurs_000", "en_ldc93s1"]),
    "zh_stream": ("zh", ["zh_funasr_asr_example", "zh_paddlespeech_zh",
                         "zh_BAC009S0764W0121", "zh_cosyvoice_zero_shot_prompt"]),
}


def items() -> list[dict]:
    """Every clip alone (language given and auto) and the multi-sentence streams."""
    by_id = {c["id"]: c for c in manifest()}
    out = []
    for c in by_id.values():
        pcm = bytes(8000 * 2) + pcm16(str(_clip_file(c)), 16000) + bytes(32000 * 2)
        for mode in ("given", "auto"):
            out.append({"name": f"{c['id']}/{mode}", "lang": c["lang"], "given": mode == "given",
                        "pcm": pcm, "reference": c["reference"]})
    gap = bytes(2 * 16000 * 2)
    for name, (lang, ids) in STREAMS.items():
        pcm = bytes(16000 * 2) + gap.join(
            pcm16(str(_clip_file(by_id[i])), 16000) for i in ids) + gap
        out.append({"name": f"{name}/given", "lang": lang, "given": True, "pcm": pcm,
                    "reference": " ".join(by_id[i]["reference"] for i in ids)})
    return out


def _clip_file(c: dict) -> Path:
    return Path(clip(c["id"])["file"])


def stream(url_ws: str, item: dict, pace: float) -> dict:
    """One SDK session of `item` at `pace` x real time: its finals' texts, joined."""
    import dashscope
    from dashscope.audio.asr import (
        Recognition,
        RecognitionCallback,
        TranslationRecognizerCallback,
        TranslationRecognizerRealtime,
    )

    dashscope.base_websocket_api_url = url_ws
    dashscope.api_key = "bench"
    finals: list[str] = []
    out: dict = {}

    if item["lang"] in PARAFORMER_LANGS:
        class CB(RecognitionCallback):
            def on_event(self, result) -> None:
                s = result.get_sentence()
                if s.get("end_time") is not None:  # a final (previews have none)
                    finals.append(s["text"])

            def on_error(self, result) -> None:
                out["error"] = f"{result.code}: {result.message}"

        kw = {"language_hints": [item["lang"]]} if item["given"] else {}
        r = Recognition(model="paraformer-realtime-v2", format="pcm", sample_rate=16000,
                        callback=CB(), **kw)
    else:
        class TCB(TranslationRecognizerCallback):
            def on_event(self, request_id, transcription_result, translation_result,
                         usage) -> None:
                if transcription_result is not None and transcription_result.is_sentence_end:
                    finals.append(transcription_result.text)

            def on_error(self, message) -> None:
                out["error"] = str(message)

        r = TranslationRecognizerRealtime(
            model="gummy-realtime-v1", format="pcm", sample_rate=16000,
            transcription_enabled=True, translation_enabled=False,
            source_language=item["lang"] if item["given"] else "auto", callback=TCB())
    pcm = item["pcm"]
    sdk_start_waits(r)  # the SDK's start race (tests/support.py)
    r.start()
    t0, step = time.monotonic(), 0.1 / pace
    for k, i in enumerate(range(0, len(pcm), CHUNK)):
        r.send_audio_frame(pcm[i:i + CHUNK])
        time.sleep(max(0.0, t0 + (k + 1) * step - time.monotonic()))
    r.stop()
    joiner = "" if item["lang"] in ("zh", "ja") else " "
    out["text"] = joiner.join(finals)
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def length(lang: str, reference: str) -> int:
    return len(norm_chars(reference)) if lang in ("zh", "ja") else len(norm_words(reference))


def run_variant(name: str, overrides: dict, work: list[dict], pace: float, parallel: int,
                rows: dict, log_dir: Path | None = None) -> None:
    env = {k: v for k, v in overrides.items() if k.startswith("VOXSCOPE_")}  # e.g. a constant
    overrides = {k: v for k, v in overrides.items() if k not in env}
    server = ServerProcess(env=env, config={"server": {"max_sessions": parallel + 2,
                                                       **overrides}}).start()
    try:
        cpu0 = cpu_seconds(server.proc.pid)
        queue = list(work)
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    item = queue.pop(0)
                res = stream(server.ws_inference, item, pace)
                rows[item["name"]][name] = {
                    "text": res.get("text", ""), "error": res.get("error"),
                    "wer": error_rate(item["lang"], item["reference"], res.get("text", ""))}

        threads = [threading.Thread(target=worker) for _ in range(parallel)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        rows["_cpu"][name] = cpu_seconds(server.proc.pid) - cpu0
        metrics = httpx.get(server.http + "/metrics", timeout=10).text
        rows["_guard"][name] = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                                   if line.startswith("voxscope_final_rechecks_total"))
    finally:
        server.stop()
        if log_dir is not None:
            (log_dir / f"server_{name}.log").write_text(server.log_path.read_text(errors="replace"))


def plain(work: list[dict], rows: dict) -> None:
    from faster_whisper import WhisperModel

    from voxscope.engine.model_store import ModelStore

    model = WhisperModel(str(ModelStore().resolve("whisper-base")), device="cpu",
                         compute_type="int8", cpu_threads=2)
    for item in work:
        audio = np.frombuffer(item["pcm"], dtype="<i2").astype(np.float32) / 32768
        segs, _ = model.transcribe(audio, beam_size=5,
                                   language=item["lang"] if item["given"] else None)
        joiner = "" if item["lang"] in ("zh", "ja") else " "
        text = joiner.join(s.text.strip() for s in segs)
        rows[item["name"]]["plain"] = {"text": text, "wer": error_rate(item["lang"],
                                                                        item["reference"], text)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[,...]",
                    help="a server to compare (default: full:final_window=full and "
                         "short:final_window=short)")
    ap.add_argument("--pace", type=float, default=1.0, help="x real time (finals do not depend)")
    ap.add_argument("--parallel", type=int, default=2, help="sessions at once per server")
    ap.add_argument("--only", nargs="*", help="item names (prefixes) to run")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--logs", type=Path, help="keep each server's log in this folder")
    args = ap.parse_args()
    variants = []
    for spec in args.variant or ["full:final_window=full", "short:final_window=short"]:
        name, _, sets = spec.partition(":")
        variants.append((name, parse_settings([s for s in sets.split(",") if s])))
    work = [i for i in items() if not args.only or any(i["name"].startswith(p)
                                                         for p in args.only)]
    rows: dict = {i["name"]: {} for i in work} | {"_cpu": {}, "_guard": {}}
    load0 = os.getloadavg()
    # Variants side by side, so a busy machine slows them alike (finals do not depend on it).
    threads = [threading.Thread(target=run_variant, args=(n, o, work, args.pace, args.parallel,
                                                          rows, args.logs)) for n, o in variants]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    plain(work, rows)
    names = [n for n, _ in variants] + ["plain"]
    print(f"machine: {platform.node()} {os.cpu_count()} cpus; load average before "
          f"{load0[0]:.1f}, after {os.getloadavg()[0]:.1f}; pace {args.pace}x")
    print(f"{'item':<44}" + "".join(f"{n:>9}" for n in names))
    totals = {n: [0.0, 0] for n in names}  # (errors, reference length)
    for item in work:
        row = rows[item["name"]]
        n_ref = length(item["lang"], item["reference"])
        print(f"{item['name']:<44}" + "".join(
            f"{row[n]['wer']:>9.3f}" if n in row else f"{'-':>9}" for n in names))
        for n in names:
            if n in row:
                totals[n][0] += row[n]["wer"] * n_ref
                totals[n][1] += n_ref
    print(f"{'total (errors / reference length)':<44}" + "".join(
        f"{(e / r if r else float('nan')):>9.3f}" for e, r in (totals[n] for n in names)))
    print("server CPU s: " + ", ".join(f"{n} {v:.1f}" for n, v in rows["_cpu"].items()))
    print("short-window finals re-decoded in the full window: "
          + ", ".join(f"{n} {v:.0f}" for n, v in rows["_guard"].items()))
    for item in work:  # where variants disagree, what each wrote
        row = rows[item["name"]]
        texts = {n: row[n]["text"] for n in names if n in row}
        if len({round(row[n]["wer"], 3) for n in texts}) > 1:
            print(f"\n{item['name']}: {item['reference']}")
            for n, t in texts.items():
                print(f"  {n:>6} {row[n]['wer']:.3f} {t}")
    if args.json:
        args.json.write_text(json.dumps({"load": [load0, os.getloadavg()], "rows": {
            k: v for k, v in rows.items()}}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
