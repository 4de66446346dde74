"""File-task throughput through nginx: two `voxscope serve` behind `deploy/nginx.conf` vs one
server behind the same config, in the same run (file tasks per minute).

Starts PostgreSQL, Redis (the shared database and queue of the several-machines setup) and a
local HTTP host for the audio, then for each setup: the server(s) with `workers` task workers
each, nginx in front (the one-server setup has both upstream lines pointing at it), a warm-up
task per server, then `--tasks` Qwen file tasks (the manifest clips, in turn) submitted through
nginx with the official SDK; the time from the first submit to the last SUCCEEDED gives tasks
per minute. On one machine both servers share its cores, so expect about 1.0x there; the ratio
means something on separate machines.

    python benchmarks/bench_multinode.py --tasks 24 --workers 1

A third setup, one server with twice the workers (as many tasks at once as the two servers),
separates a second machine's gain from running more tasks at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashscope.audio.qwen_asr import QwenTranscription  # noqa: E402

from tests.files.helpers import QWEN, AudioHost, duration_s  # noqa: E402
from tests.operations.multinode_support import Nginx, postgres_server, redis_server  # noqa: E402
from tests.support import ServerProcess, manifest, sdk_at  # noqa: E402


def _cpu() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _run_tasks(gw: Nginx, urls: list[str]) -> float:
    """Submit every URL through nginx, wait for all; seconds from first submit to last done."""
    with sdk_at(gw):
        start = time.monotonic()
        ids = []
        for url in urls:
            r = QwenTranscription.async_call(model=QWEN, file_url=url)
            assert r.status_code == 200, (r.status_code, r.code, r.message)
            ids.append(r.output.task_id)

        def wait(task_id: str) -> None:
            w = QwenTranscription.wait(task=task_id, wait_timeout=3600)
            assert w.status_code == 200 and w.output.task_status == "SUCCEEDED", w

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(wait, ids))
        return time.monotonic() - start


def _setup(n_servers: int, workers: int, common: dict, host: AudioHost, urls: list[str],
           audio_s: float) -> dict:
    servers = [ServerProcess(config={"server": {**common, "workers": workers}})
               for _ in range(n_servers)]
    nginx = None
    try:
        with ThreadPoolExecutor(n_servers) as pool:
            list(pool.map(lambda s: s.start(), servers))
        ports = [s.port for s in servers]
        nginx = Nginx(ports * 2 if n_servers == 1 else ports).start()
        warm = [host.clip_url("en_ldc93s1")] * n_servers  # first decodes build kernels: untimed
        _run_tasks(nginx, warm)
        load = os.getloadavg()[0]
        took = _run_tasks(nginx, urls)
        spread = sorted({p for _, path, p in nginx.access() if path.startswith("/api/v1/services")})
        return {"servers": n_servers, "workers": workers, "tasks": len(urls), "seconds": took,
                "tasks_per_min": len(urls) / took * 60, "audio_min_per_min": audio_s / took,
                "load_before": load, "load_after": os.getloadavg()[0],
                "submits_went_to": len(spread)}
    finally:
        if nginx is not None:
            nginx.stop()
        for s in servers:
            with contextlib.suppress(Exception):
                s.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=24, help="file tasks per setup")
    ap.add_argument("--workers", type=int, default=1, help="task workers per server")
    ap.add_argument("--cpu-threads", type=int, default=0, help="per server (0: all cores)")
    args = ap.parse_args()

    clips = [c["id"] for c in manifest()]
    chosen = [clips[i % len(clips)] for i in range(args.tasks)]
    audio_s = sum(duration_s(c) for c in chosen)
    print(f"machine: {os.cpu_count()} cores, {_cpu()}; load average {os.getloadavg()[0]:.1f} "
          f"at start; {args.tasks} tasks, {audio_s:.0f} s of audio per setup; "
          f"{args.workers} worker(s) per server, cpu_threads={args.cpu_threads}")
    host = AudioHost().start()
    try:
        with postgres_server() as pg, redis_server() as redis_port:
            common = {"database_url": pg, "queue_url": f"redis://127.0.0.1:{redis_port}/0",
                      "secret_key": "bench-multinode", "fetch_allow_private": True,
                      "cpu_threads": args.cpu_threads}
            urls = [host.clip_url(c) for c in chosen]
            # The third setup runs as many tasks at once as the two servers together: it tells
            # a second machine's gain from mere task concurrency.
            w = args.workers
            rows = [_setup(n, k, common, host, urls, audio_s) for n, k in ((1, w), (2, w), (1, 2 * w))]
    finally:
        host.stop()
    print(f"\n{'setup':<30}{'seconds':>9}{'tasks/min':>11}{'audio min/min':>15}"
          f"{'load before→after':>20}")
    for r in rows:
        name = f"{r['servers']} server(s) x {r['workers']} worker(s)"
        print(f"{name:<30}{r['seconds']:>9.1f}{r['tasks_per_min']:>11.1f}"
              f"{r['audio_min_per_min']:>15.2f}{r['load_before']:>12.1f} → {r['load_after']:.1f}")
    one, two, wide = (r["tasks_per_min"] for r in rows)
    print(f"\n2 servers / 1 server: {two / one:.2f}x file tasks per minute (submits spread over "
          f"{rows[1]['submits_went_to']} servers); 2 servers / 1 server with as many workers: "
          f"{two / wide:.2f}x")


if __name__ == "__main__":
    main()
