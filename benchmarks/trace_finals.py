"""Where each realtime final's delay went, read off a traced server log (VOXSCOPE_TRACE=1).

For every sentence final a traced `voxscope serve` delivered, splits its delay after the end of
speech (the recognizer's `speech_end_t`) into: the pause until the sentence closed, the queue wait
of the decode whose result became the final (and what the model ran meanwhile: the batch already
in flight when it was queued, other finals, previews, cancelled requests it skipped), its own
decode (and its batch size), a short-window recheck decoded again in the full window, and the
wait after its result for the stream's previous final (results go out in order). Used by
`bench_overload.py --trace`; also runs on a saved log:

    python benchmarks/trace_finals.py server.log
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voxscope.engine.streaming.trace import parse  # noqa: E402


def _requests(lines: list[dict]) -> dict[tuple[int, int, str], int]:
    """(stream, seg, what) -> scheduler seq of the request a recognizer event submitted: the
    scheduler's `submit` line comes right before the recognizer's own (same thread)."""
    out: dict[tuple[int, int, str], int] = {}
    last_submit: dict | None = None
    for e in lines:
        if e["ev"] == "submit":
            last_submit = e
            continue
        what = e["ev"]
        if what in ("speculate", "close", "recheck", "preview_submit",
                    "early_recheck") and last_submit is not None:
            if what == "close" and e.get("speculative_hit"):
                continue  # a hit submits nothing at close: its final is the speculative one
            if what == "recheck" and e.get("early"):
                continue  # it submitted nothing: its decode is the early one, asked at the close
            key = (e["stream"], e["seg"], "recheck" if what == "early_recheck" else what)
            out[key] = last_submit["seq"]  # speculate/preview: the last one of the sentence
            last_submit = None
    return out


def explain(log: str) -> list[dict]:
    """One row per delivered final (see the module docstring), oldest first."""
    lines = [e for e in map(parse, log.splitlines()) if e is not None]
    seqs = _requests(lines)
    submitted = {e["seq"]: e["t"] for e in lines if e["ev"] == "submit"}
    priority = {e["seq"]: e["priority"] for e in lines if e["ev"] == "submit"}
    batches = [e for e in lines if e["ev"] == "batch" and not e.get("file_lane")]
    by_seq = {s: b for b in batches for s in b.get("seqs", ())}
    skipped = [e for e in lines if e["ev"] == "skip_cancelled"]
    closes = {(e["stream"], e["seg"]): e for e in lines if e["ev"] == "close"}
    rows = []
    for e in lines:
        if e["ev"] != "final_out":
            continue
        sent = (e["stream"], e["seg"])
        close = closes.get(sent)
        if close is None:
            continue
        seq = seqs.get((*sent, "speculate" if close.get("speculative_hit") else "close"))
        if seq is None or seq not in by_seq:
            continue  # a promoted preview's result or an untraced request
        b = by_seq[seq]
        t_sub, t_start = submitted[seq], b["start"]
        t_ready = t_start + b["decode_s"]
        speech_end = close["speech_end_t"]
        # What the model ran while this final was queued: the batch already in flight when it was
        # queued (its rest), then each batch that started meanwhile, by class.
        ran: dict[str, float] = {}
        for o in batches:
            o_end = o["start"] + o["decode_s"]
            if o is b or o_end <= t_sub or o["start"] >= t_start:
                continue
            if o["start"] < t_sub:
                name = f"in_flight_{o['priority']}"
            elif o["priority"] == "final":
                # A final-priority batch of previews only: queued previews promoted at a close
                # (engine/recognizer.py, _close), decoded at a final's priority.
                promoted = all(priority.get(x) == "partial" for x in o["seqs"])
                name = "promoted_previews" if promoted else "other_finals"
            else:
                name = o["priority"]
            ran[name] = ran.get(name, 0.0) + min(o_end, t_start) - max(o["start"], t_sub)
        recheck_seq = seqs.get((*sent, "recheck"))
        recheck_s = 0.0
        if recheck_seq is not None and recheck_seq in by_seq:
            rb = by_seq[recheck_seq]
            recheck_s = rb["start"] + rb["decode_s"] - max(t_ready, close["t"])
        ready = max(t_ready, close["t"]) + max(recheck_s, 0.0)
        rows.append({
            "stream": e["stream"], "seg": e["seg"], "delay": round(e["t"] - speech_end, 3),
            "pause": round(close["t"] - speech_end, 3),
            "speculative_hit": bool(close.get("speculative_hit")),
            "queued_after_close": round(t_sub - close["t"], 3),
            "queue_wait": round(t_start - t_sub, 3),
            "waited_behind": {k: round(v, 3) for k, v in sorted(ran.items())},
            "skipped_cancelled": sum(len(x["seqs"]) for x in skipped
                                     if t_sub <= x["t"] <= t_start),
            "decode": round(b["decode_s"], 3), "batch_size": b["size"], "full": b["full"],
            "ready_after_close": round(t_ready - close["t"], 3),
            "recheck": round(max(recheck_s, 0.0), 3) if recheck_seq is not None else None,
            "order_wait": round(e["t"] - ready, 3),
        })
    return rows


def summary(rows: list[dict], top: int = 10) -> dict:
    """The slowest finals and, over all of them and over the slowest 10 %, the mean of each part."""
    if not rows:
        return {"finals": 0}
    rows = sorted(rows, key=lambda r: r["delay"], reverse=True)
    tail = rows[: max(1, len(rows) // 10)]

    def means(rs: list[dict]) -> dict:
        parts: dict[str, float] = {}
        for r in rs:
            for k in ("pause", "queue_wait", "decode", "order_wait"):
                parts[k] = parts.get(k, 0.0) + r[k] / len(rs)
            parts["recheck"] = parts.get("recheck", 0.0) + (r["recheck"] or 0.0) / len(rs)
            for k, v in r["waited_behind"].items():
                parts["behind_" + k] = parts.get("behind_" + k, 0.0) + v / len(rs)
        parts["batch_size"] = sum(r["batch_size"] for r in rs) / len(rs)
        parts["speculative_hits"] = sum(r["speculative_hit"] for r in rs) / len(rs)
        parts["delay"] = sum(r["delay"] for r in rs) / len(rs)
        return {k: round(v, 3) for k, v in sorted(parts.items())}

    delays = [r["delay"] for r in rows]
    return {"finals": len(rows), "delay_p50": round(float(np.percentile(delays, 50)), 3),
            "delay_p95": round(float(np.percentile(delays, 95)), 3),
            "mean_all": means(rows), "mean_slowest_10pct": means(tail), "slowest": rows[:top]}


def print_summary(s: dict) -> None:
    if not s.get("finals"):
        print("  trace: no finals traced")
        return
    print(f"  trace: {s['finals']} finals, server-side delay p50 {s['delay_p50']:.2f} / "
          f"p95 {s['delay_p95']:.2f} s")
    print(f"    mean, all:         {s['mean_all']}")
    print(f"    mean, slowest 10%: {s['mean_slowest_10pct']}")
    for r in s["slowest"]:
        print(f"    {r['delay']:5.2f} s = pause {r['pause']:.2f} + after close: queued "
              f"{r['queued_after_close']:+.2f}, waited {r['queue_wait']:.2f} behind "
              f"{r['waited_behind']} (skipped {r['skipped_cancelled']} cancelled), decode "
              f"{r['decode']:.2f} in a batch of {r['batch_size']}, recheck {r['recheck']}, "
              f"order {r['order_wait']:.2f}; spec hit {r['speculative_hit']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("log", type=Path, help="a server log written with VOXSCOPE_TRACE=1")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    s = summary(explain(args.log.read_text(errors="replace")))
    print(json.dumps(s, indent=2) if args.json else "", end="")
    if not args.json:
        print_summary(s)


if __name__ == "__main__":
    main()
