"""What authentication and per-key limits add to a request: p50/p99 latency of a cheap
authenticated endpoint (`GET /v1/models`) through real `voxscope serve` processes, and in-process
micro-timings of the pieces (KeyRing lookup, limiter hit, session acquire/release).

Variants, measured in interleaved rounds in the same run so machine load hits them alike:

- `open`: no keys at all (the baseline every other row is compared with);
- `config-key`: a key from the config file;
- `db-sqlite`: a key made by `voxscope keys create`, SQLite database;
- `db-sqlite+limits`: the same with `--rps`/`--max-sessions` (the in-process limiter counts it);
- `db-postgres`: a database key on PostgreSQL (`-2srv`: alternating over two servers);
- `db-pg+redis-2srv`: a key with limits on two servers sharing PostgreSQL and Redis, requests
  alternating between them (every request counted in Redis).

Needs `redis-server` and the PostgreSQL server binaries (Debian `redis-server`, `postgresql`).

    python benchmarks/bench_auth_overhead.py [--rounds 100 --per-round 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.files.test_postgres import BIN, _as_postgres  # noqa: E402
from tests.operations.helpers import create_key, wait_keyed  # noqa: E402
from tests.support import ServerProcess, free_port  # noqa: E402

CONFIG_KEY = "bench-config-key-0123456789abcdef"
LIMITS = ("--rps", "1000000", "--max-sessions", "1000")  # never reached: only the counting costs


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save",
                             "", "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    if not BIN:
        raise SystemExit("PostgreSQL server binaries are missing (Debian package postgresql)")
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()
    data = str(root / "data")
    subprocess.run(_as_postgres([f"{BIN[-1]}/initdb", "-D", data, "-A", "trust", "-U",
                                 "postgres"]), check=True, capture_output=True)
    subprocess.run(_as_postgres([f"{BIN[-1]}/pg_ctl", "-D", data, "-w", "-l", str(root / "log"),
                                 "-o", f"-k {root} -p {port} -c listen_addresses=''", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={root}&port={port}"
    finally:
        subprocess.run(_as_postgres([f"{BIN[-1]}/pg_ctl", "-D", data, "-m", "fast", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_servers(rounds: int, per_round: int) -> dict[str, list[float]]:
    started: list[ServerProcess] = []

    def serve(**server: object) -> ServerProcess:
        s = ServerProcess(config={"server": {"workers": 0, **server}})
        started.append(s)
        return s.start()

    with redis_server() as redis_url, postgres() as pg_url:
        try:
            open_ = serve()
            keyed = serve(api_keys=[CONFIG_KEY])
            db_key = create_key(keyed, "bench")
            limited = create_key(keyed, "bench-limited", *LIMITS)
            pg = [serve(database_url=pg_url, queue_url=redis_url) for _ in range(2)]
            pg_key = create_key(pg[0], "bench-pg")
            pg_limited = create_key(pg[0], "bench-pg-limited", *LIMITS)
            for s in pg:
                wait_keyed(s)
            # (name, servers to alternate over, key)
            variants = [("open", [open_], CONFIG_KEY), ("config-key", [keyed], CONFIG_KEY),
                        ("db-sqlite", [keyed], db_key), ("db-sqlite+limits", [keyed], limited),
                        ("db-postgres", [pg[0]], pg_key), ("db-postgres-2srv", pg, pg_key),
                        ("db-pg+redis-2srv", pg, pg_limited)]
            clients = {s.port: httpx.Client(base_url=s.http, timeout=30) for s in started}
            times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
            for r in range(rounds + 1):  # round 0 warms connections and key caches
                for name, servers, key in variants:
                    headers = {"Authorization": f"Bearer {key}"}
                    for i in range(per_round):
                        client = clients[servers[i % len(servers)].port]
                        t = time.perf_counter()
                        answer = client.get("/v1/models", headers=headers)
                        took = time.perf_counter() - t
                        if answer.status_code != 200:
                            raise RuntimeError(f"{name}: HTTP {answer.status_code} {answer.text}")
                        if r:
                            times[name].append(took * 1000)
            for c in clients.values():
                c.close()
            return times
        finally:
            for s in started:
                s.stop()


def micro(redis_url: str, n: int = 20000) -> list[tuple[str, float]]:
    """Mean µs per call of the pieces, in this process."""
    from voxscope.service.auth import KeyChecker
    from voxscope.service.keys import KeyRing
    from voxscope.service.limits import LocalLimiter
    from voxscope.service.redis_limits import RedisLimiter
    from voxscope.storage.api_keys import KeyStore
    from voxscope.storage.database import Database

    tmp = Path(tempfile.mkdtemp(prefix="bench-keys-"))
    store = KeyStore(Database(f"sqlite:///{tmp / 'keys.db'}"))
    _, plain = store.create("plain")
    _, limited = store.create("limited", rps=1e9, max_sessions=10**6)
    local, remote = LocalLimiter(), RedisLimiter(redis_url)
    rings = {"local": KeyRing(KeyChecker([CONFIG_KEY]), store, limiter=local),
             "redis": KeyRing(KeyChecker([CONFIG_KEY]), store, limiter=remote)}

    def each(fn: Callable[[], object], count: int = n) -> float:
        fn()  # warm (fills the key cache)
        t = time.perf_counter()
        for _ in range(count):
            fn()
        return (time.perf_counter() - t) / count * 1e6

    def auth(ring: KeyRing, key: str) -> Callable[[], object]:
        headers = {"authorization": f"Bearer {key}"}
        return lambda: ring.authenticate(headers)

    def session(limiter) -> Callable[[], object]:
        def run() -> None:
            limiter.acquire_session("bench", 10**6)
            limiter.release_session("bench")
        return run

    rows = [("KeyRing.authenticate, config key", each(auth(rings["local"], CONFIG_KEY))),
            ("KeyRing.authenticate, DB key (cached)", each(auth(rings["local"], plain))),
            ("KeyRing.authenticate, DB key (cache miss: SQLite lookup)",
             each(lambda: (rings["local"]._cache._items.clear(),
                           rings["local"].authenticate({"authorization": f"Bearer {plain}"})),
                  2000)),
            ("KeyRing.authenticate, DB key + rps, LocalLimiter", each(auth(rings["local"], limited))),
            ("KeyRing.authenticate, DB key + rps, RedisLimiter", each(auth(rings["redis"], limited),
                                                                     5000)),
            ("LocalLimiter.hit", each(lambda: local.hit("bench", 1e9))),
            ("Redis PING round trip (the floor of any shared counter)",
             each(remote._redis.ping, 5000)),
            ("RedisLimiter.hit", each(lambda: remote.hit("bench", 1e9), 5000)),
            ("LocalLimiter session acquire+release", each(session(local))),
            ("RedisLimiter session acquire+release", each(session(remote), 5000))]
    remote.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--per-round", type=int, default=20)
    args = ap.parse_args()
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
    times = measure_servers(args.rounds, args.per_round)
    base50, base99 = pct(times["open"], 0.5), pct(times["open"], 0.99)
    print(f"\nGET /v1/models, {args.rounds} x {args.per_round} requests per variant (ms)")
    print(f"{'variant':<20} {'p50':>7} {'p99':>7} {'mean':>7} {'+p50':>7} {'+p99':>7}")
    for name, values in times.items():
        p50, p99 = pct(values, 0.5), pct(values, 0.99)
        print(f"{name:<20} {p50:7.3f} {p99:7.3f} {statistics.fmean(values):7.3f} "
              f"{p50 - base50:+7.3f} {p99 - base99:+7.3f}")
    with redis_server() as redis_url:
        rows = micro(redis_url)
    print("\nin-process, mean per call (µs)")
    for name, us in rows:
        print(f"{name:<58} {us:8.2f}")
    print(f"\n# load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")


if __name__ == "__main__":
    main()
