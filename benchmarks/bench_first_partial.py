"""First partial after an utterance starts (issue 12, First partial): short phrases and sentences.

Starts a real `voxscope serve` and, for N = 1, 4 concurrent clients, streams through the official
SDK at real-time pace a sequence of utterances separated by pauses: short phrases (~0.6-0.9 s,
cut from en_beckett: "Ever tried.", "Ever failed.", ...) and whole sentences (real clips), each
followed by a 2.5 s pause. First-partial delay = first partial result of the utterance minus the
moment its onset was sent (onsets from Silero VAD run offline on the same audio). Reported
separately for short phrases and sentences; a phrase that got no partial at all (only its final)
counts with its final's delay, since that is when the user first sees something.

    python benchmarks/bench_first_partial.py --streams 1 4 --baseline-set first_preview_ahead=false

`--trace` runs the servers with VOXSCOPE_TRACE=1 and prints, per utterance, where its first
partial's time went (engine/streaming/trace.py): sentence opened, first preview submitted, what
each preview decode came to (shown, or dropped and why) and the model's batches around it.
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

from benchmarks.bench_streaming import pct, sdk_stream  # noqa: E402
from benchmarks.settings_args import parse_settings, split_env  # noqa: E402
from tests.support import ServerProcess, clip_pcm, silence_pcm  # noqa: E402

# (clip, start s, end s) of short phrases, and whole sentences
PHRASES = [("en_beckett", 0.1, 1.4), ("en_beckett", 1.7, 3.0), ("en_beckett", 3.35, 4.4),
           ("en_beckett", 4.75, 5.8)]
SENTENCES = ["en_ldc93s1", "zh_paddlespeech_zh", "en_ljspeech_LJ001-0001"]
GAP_S = 2.5


def build(seed: int) -> tuple[bytes, list[tuple[float, float, str]]]:
    """Phrases and sentences interleaved, 2.5 s pauses; (onset, end, kind) per utterance."""
    rng = np.random.default_rng(seed)
    parts: list[tuple[bytes, str]] = []
    for k, sentence in enumerate(rng.permutation(SENTENCES)):
        c, a, b = PHRASES[(k + seed) % len(PHRASES)]
        parts.append((clip_pcm(c)[int(a * 16000) * 2:int(b * 16000) * 2], "phrase"))
        parts.append((clip_pcm(str(sentence)), "sentence"))
    from voxscope.engine.model_store import ModelStore
    from voxscope.engine.vad import SileroVad

    vad = SileroVad(ModelStore().silero_vad_path())
    pcm = silence_pcm(1.0)
    utterances = []
    for part, kind in parts:
        audio = np.frombuffer(part, dtype="<i2").astype(np.float32) / 32768
        speech = np.flatnonzero(vad.speech_probs(audio) >= 0.5)
        if speech.size:
            offset = len(pcm) / 32000
            utterances.append((offset + speech[0] * 0.032, offset + (speech[-1] + 1) * 0.032,
                               kind))
        pcm += part + silence_pcm(GAP_S)
    return pcm, utterances


def client(url_ws: str, pcm: bytes, utterances, out: dict) -> None:
    t0, events = sdk_stream(url_ws, pcm, out)
    out["t0"], out["utterances"] = t0, utterances
    rows = []
    for onset, end, kind in utterances:
        mine = [(t - t0, s) for t, s in events if s["text"]
                and onset - 0.6 <= s["begin_time"] / 1000 <= end + 0.3]
        partials = [t for t, s in mine if s["end_time"] is None]
        finals = [t for t, s in mine if s["end_time"] is not None]
        first = min(partials + finals, default=None)
        rows.append({"kind": kind, "first": None if first is None else first - onset,
                     "had_partial": bool(partials),
                     "final": min(finals) - end if finals else None})
    out["rows"] = rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="server settings, e.g. partial_interval_s=0.5")
    ap.add_argument("--baseline-set", nargs="*", default=None, metavar="KEY=VALUE",
                    help="also run, in the same run, a server with these settings (the baseline), "
                         "e.g. first_preview_ahead=false")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--trace", action="store_true",
                    help="trace each utterance's steps in the server (VOXSCOPE_TRACE=1)")
    args = ap.parse_args()
    modes = [("settings", args.set)]
    if args.baseline_set is not None:
        modes.insert(0, ("baseline", args.baseline_set))
    results: dict = {"machine": f"{platform.node()} {os.cpu_count()} cpus",
                     "loadavg_before": os.getloadavg(), "runs": []}
    print(f"{'mode':>9} {'streams':>7} {'phrase 1st p50/p95':>19} {'no partial':>10} "
          f"{'sentence 1st p50/p95':>21} {'final p50/p95':>14} {'errors':>6}")
    for mode, sets in modes:
        overrides = parse_settings(sets)
        run_mode(mode, overrides, args.streams, results, args.trace)
    results["loadavg_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def run_mode(mode: str, overrides: dict, streams: list[int], results: dict,
             traced: bool = False) -> None:
    env, settings = split_env(overrides)  # VOXSCOPE_* keys: the server's environment
    server = ServerProcess(config={"server": {"max_sessions": max(streams) + 2, **settings}},
                           env={**env, "VOXSCOPE_TRACE": "1"} if traced else env).start()
    try:
        for n in streams:
            outs: list[dict] = [{} for _ in range(n)]
            threads = []
            for k in range(n):
                pcm, utt = build(k)
                threads.append(threading.Thread(target=client,
                                                args=(server.ws_inference, pcm, utt, outs[k])))
            for th in threads:
                th.start()
                time.sleep(0.37)
            for th in threads:
                th.join()
            rows = [r for o in outs for r in o.get("rows", [])]
            ph = [r["first"] for r in rows if r["kind"] == "phrase" and r["first"] is not None]
            se = [r["first"] for r in rows if r["kind"] == "sentence" and r["first"] is not None]
            fin = [r["final"] for r in rows if r["final"] is not None]
            row = {"mode": mode, "settings": overrides, "streams": n,
                   "phrase_first_p50": pct(ph, 50), "phrase_first_p95": pct(ph, 95),
                   "phrases_without_partial": sum(1 for r in rows if r["kind"] == "phrase"
                                                  and not r["had_partial"]),
                   "phrases": sum(1 for r in rows if r["kind"] == "phrase"),
                   "sentence_first_p50": pct(se, 50), "sentence_first_p95": pct(se, 95),
                   "final_p50": pct(fin, 50), "final_p95": pct(fin, 95),
                   "errors": [o["error"] for o in outs if "error" in o]}
            results["runs"].append(row)
            print(f"{mode:>9} {n:>7} {row['phrase_first_p50']:>8.2f} / {row['phrase_first_p95']:<8.2f} "
                  f"{row['phrases_without_partial']:>4}/{row['phrases']:<5} "
                  f"{row['sentence_first_p50']:>9.2f} / {row['sentence_first_p95']:<9.2f} "
                  f"{row['final_p50']:>5.2f} / {row['final_p95']:<6.2f} {len(row['errors']):>6}",
                  flush=True)
            if traced:
                row["trace"] = explain(server.log_path.read_text(errors="replace"), outs)
    finally:
        server.stop()


def _matches(events: list[dict], t0: float, utterances) -> int:
    """How many of a client's utterance onsets a traced stream opened a sentence at."""
    opens = [e for e in events if e["ev"] == "open" and e["t"] >= t0]
    return sum(1 for onset, _, _ in utterances
               if any(abs(e["start_s"] + 0.3 - onset) < 0.4 for e in opens))


def explain(log: str, outs: list[dict]) -> list[dict]:
    """Per utterance, its steps in the server, in seconds after its onset was sent (printed)."""
    from voxscope.engine.streaming.trace import parse

    evs = [e for e in map(parse, log.splitlines()) if e is not None]
    batches = [e for e in evs if e["ev"] == "batch"]
    by_stream: dict[int, list[dict]] = {}
    for e in evs:
        if e["stream"]:
            by_stream.setdefault(e["stream"], []).append(e)
    rows = []
    taken: set[int] = set()
    for k, out in enumerate(outs):
        if "t0" not in out:
            continue
        t0, utt = out["t0"], out["utterances"]
        # The client's stream: the one whose sentences opened at its onsets, during its run.
        free = [sid for sid in by_stream if sid not in taken]
        if not free:
            break
        sid = max(free, key=lambda sid: _matches(by_stream[sid], t0, utt))
        taken.add(sid)
        mine = [e for e in by_stream[sid] if e["t"] >= t0]
        for onset, _end, kind in utt:
            at = t0 + onset
            opened = next((e for e in mine if e["ev"] == "open"
                           and abs(e["start_s"] + 0.3 - onset) < 0.4), None)
            if opened is None:
                rows.append({"client": k, "kind": kind, "onset_s": onset, "opened": None})
                continue
            seg = [e for e in mine if e.get("seg") == opened["seg"]]
            steps = []
            for e in seg:
                d = round(e["t"] - at, 2)
                if e["ev"] == "preview_submit":
                    steps.append(f"{d:+.2f} submit#{e['seq']} ({e['audio_s']:.2f} s, "
                                 f"lang {e['language']})")
                elif e["ev"] == "preview_result":
                    b = max((b for b in batches if b["t"] <= e["t"] + 0.01),
                            key=lambda b: b["t"], default=None)
                    dec = f", batch {b['priority']} x{b['size']} {b['decode_s']:.2f} s" if b else ""
                    steps.append(f"{d:+.2f} result#{e['seq']} {e['outcome']} "
                                 f"[{e['language']}] {e['text']!r}{dec}")
                elif e["ev"] in ("partial_out", "final_out", "close", "final_empty"):
                    steps.append(f"{d:+.2f} {e['ev']} {e.get('text', '')!r}")
            finals_busy = sum(b["decode_s"] for b in batches if b["priority"] == "final"
                              and at <= b["t"] <= at + 1.5)
            row = {"client": k, "kind": kind, "onset_s": round(onset, 2),
                   "opened": round(opened["t"] - at, 2), "steps": steps,
                   "final_decode_s_in_first_1.5s": round(finals_busy, 2)}
            rows.append(row)
            print(f"  client {k} {kind:8} onset {onset:6.2f} s: opened {row['opened']:+.2f}; "
                  f"finals decoding in its first 1.5 s: {finals_busy:.2f} s")
            for step in steps:
                print(f"      {step}")
    return rows


if __name__ == "__main__":
    main()
