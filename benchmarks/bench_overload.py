"""Overload: offer more real-time streams than the machine can serve (issue 12, Overload/Streams).

Starts a real `voxscope serve` and offers N streams (default 8) through the official SDK at
real-time pace, arriving `--stagger` seconds apart. Reports how many were admitted and refused
(Throttling.Capacity by measured load), and for the admitted streams: final delay p50/p95 after
each sentence's end, first-partial delay p50 after its onset, and finals per speech region (every
sentence must be finalized). With `--baseline` the same offer is made in the same run to a server
with admission by measured load off (`admit_max_load=0`, only max_sessions), for comparison.
With `--trace` each server runs with VOXSCOPE_TRACE=1 and the run prints where the admitted
finals' delay went (benchmarks/trace_finals.py: pause, queue wait and behind what, decode, batch).

    python benchmarks/bench_overload.py --streams 8 --baseline
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import trace_finals  # noqa: E402
from benchmarks.bench_streaming import build_stream, pct, region_delays, sdk_stream  # noqa: E402
from benchmarks.settings_args import parse_settings, split_env  # noqa: E402
from tests.support import ServerProcess  # noqa: E402
from voxscope.config import Settings  # noqa: E402


def long_stream(seed: int, repeat: int) -> tuple[bytes, list[tuple[float, float]]]:
    """`repeat` streams of bench_streaming's kind back to back (regions shifted to match)."""
    pcm, regions = b"", []
    for k in range(repeat):
        part, regs = build_stream(seed * 100 + k)
        offset = len(pcm) / 32000
        pcm += part
        regions += [(a + offset, b + offset) for a, b in regs]
    return pcm, regions


def client(url_ws: str, pcm: bytes, regions, out: dict) -> None:
    t0, events = sdk_stream(url_ws, pcm, out)
    if "error" not in out:
        out.update(region_delays(t0, events, regions))


def offer(n: int, repeat: int, stagger: float, overrides: dict, traced: bool = False) -> dict:
    # Admission as shipped unless overridden (test servers default to it off).
    admit = Settings.model_fields["admit_max_load"].default
    env, overrides = split_env(overrides)  # VOXSCOPE_*: the server's environment
    server = ServerProcess(config={"server": {"max_sessions": n + 2, "admit_max_load": admit,
                                              **overrides}},
                           env={**env, "VOXSCOPE_TRACE": "1"} if traced else env).start()
    load0 = os.getloadavg()[0]  # the machine is shared: every number goes with its load
    try:
        outs: list[dict] = [{} for _ in range(n)]
        threads = []
        for k in range(n):
            pcm, regions = long_stream(k + 1, repeat)
            threads.append(threading.Thread(target=client, args=(server.ws_inference, pcm,
                                                                 regions, outs[k])))
        shares: list[float] = []
        sampler = threading.Thread(target=sample_share, args=(server.http, threads, shares),
                                   daemon=True)
        for th in threads:
            th.start()
            if th is threads[0]:
                sampler.start()
            time.sleep(stagger)
        for th in threads:
            th.join()
        sampler.join()
        health = server.health()
        counts = metric_counts(server.http)
    finally:
        server.stop()
    traced_finals = (trace_finals.summary(trace_finals.explain(
        server.log_path.read_text(errors="replace"))) if traced else None)
    admitted = [o for o in outs if "error" not in o]
    refused = [o["error"] for o in outs if "error" in o]
    fd = [v for o in admitted for v in o["final"]]
    fp = [v for o in admitted for v in o["first_partial"]]
    return {"offered": n, "admitted": len(admitted), "refused": len(refused),
            "refusals": refused[:3], "final_p50": pct(fd, 50), "final_p95": pct(fd, 95),
            "final_max": max(fd, default=float("nan")), "first_partial_p50": pct(fp, 50),
            "first_partial_p95": pct(fp, 95),
            "regions_finalized": f"{sum(o['covered'] for o in admitted)}/"
                                 f"{sum(o['regions'] for o in admitted)}",
            "served": health["models"], "loadavg_1m": [load0, os.getloadavg()[0]],
            "speculative": {k: v for k, v in counts.items() if k.startswith("speculative")},
            "final_rechecks": counts.get("final_rechecks", 0.0),
            "stream_cost": counts.get("stream_cost"),
            "final_decode_s": counts.get("final_decode_s"),
            "final_sentence_s": counts.get("final_sentence_s"),
            "sentence_rate": counts.get("sentence_rate"),
            "final_share_p50_max": [pct(shares, 50), max(shares, default=float("nan"))],
            "trace": traced_finals, "log": str(server.log_path)}


def sample_share(http: str, threads: list[threading.Thread], out: list[float]) -> None:
    """The measured final share (/metrics) every 2 s while streams run: what admission and the
    speculation rule see."""
    while any(th.is_alive() for th in threads):
        with contextlib.suppress(httpx.HTTPError):
            out.append(metric_counts(http).get("final_share", 0.0))
        time.sleep(2.0)


def metric_counts(http: str) -> dict[str, float]:
    """The speculation, recheck and admission price figures on /metrics (summed over models)."""
    names = {"voxscope_speculative_finals_total": "speculative_{outcome}",
             "voxscope_final_rechecks_total": "final_rechecks",
             "voxscope_load_stream_cost": "stream_cost",
             "voxscope_load_final_decode_seconds": "final_decode_s",
             "voxscope_load_final_sentence_seconds": "final_sentence_s",
             "voxscope_load_final_share": "final_share",
             "voxscope_load_sentence_rate": "sentence_rate"}
    out: dict[str, float] = {}
    text = httpx.get(http + "/metrics", timeout=10).text
    for sample in (s for fam in text_string_to_metric_families(text) for s in fam.samples):
        if sample.name in names:
            key = names[sample.name].format(**sample.labels)
            out[key] = out.get(key, 0.0) + sample.value
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2, help="stream length: ~30 s per repeat")
    ap.add_argument("--stagger", type=float, default=2.0, help="seconds between arrivals")
    ap.add_argument("--baseline", action="store_true",
                    help="also offer the same streams with admission by load off (same run)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="server settings, e.g. admit_max_load=0.7 load_window_s=10")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                    help="also offer the same streams to a server with these settings on top "
                         "of --set (same run), e.g. old-spec:speculate_max_final_share=1")
    ap.add_argument("--trace", action="store_true",
                    help="trace the servers (VOXSCOPE_TRACE=1) and print where each final's "
                         "delay went (benchmarks/trace_finals.py)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    overrides = parse_settings(args.set)
    results: dict = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
                     "loadavg_before": os.getloadavg(), "runs": {}}
    modes = [("admission", overrides)]
    if args.baseline:
        modes.append(("max_sessions only", {**overrides, "admit_max_load": 0}))
    for v in args.variant:
        name, _, kvs = v.partition(":")
        extra = parse_settings(kvs.split(","))
        modes.append((name, {**overrides, **extra}))
    print(f"{'mode':>18} {'admitted':>8} {'refused':>7} {'final p50/p95/max (s)':>22} "
          f"{'1st partial p50/p95':>20} {'finalized':>9} {'load 1m':>10}")
    for name, ov in modes:
        row = offer(args.streams, args.repeat, args.stagger, ov, args.trace)
        results["runs"][name] = row
        print(f"{name:>18} {row['admitted']:>8} {row['refused']:>7} "
              f"{row['final_p50']:>7.2f} / {row['final_p95']:.2f} / {row['final_max']:<6.2f} "
              f"{row['first_partial_p50']:>9.2f} / {row['first_partial_p95']:<8.2f} "
              f"{row['regions_finalized']:>9} {row['loadavg_1m'][0]:>4.1f}-{row['loadavg_1m'][1]:<4.1f}",
              flush=True)
        finals = sum(m["served"].get("final", 0) for m in row["served"].values())
        print(f"{'':>18} finals decoded {finals}, "
              f"speculative {row['speculative']}, rechecks {row['final_rechecks']:.0f}, "
              f"final share p50/max {row['final_share_p50_max'][0]:.2f}/"
              f"{row['final_share_p50_max'][1]:.2f}, final s/sentence {row['final_sentence_s']}, "
              f"priced sentences/s {row['sentence_rate']}",
              flush=True)
        if row["trace"] is not None:
            trace_finals.print_summary(row["trace"])
    results["loadavg_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
