"""Running the several-machines setup from tests and benchmarks: nginx with the shipped
`deploy/nginx.conf` (only its ports replaced), and throwaway Redis and PostgreSQL servers for
scripts that are not pytest modules (tests use the fixtures of tests/files/)."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support import free_port

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"


class Missing(RuntimeError):
    """A Debian package the setup needs is not installed."""


def render_nginx(text: str, listen: int, upstreams: list[int]) -> str:
    """deploy/nginx.conf with its listen port and its two upstream ports replaced; nothing else."""
    lines = re.findall(r"^\s*server 127\.0\.0\.1:\d+ .*;$", text, re.M)
    assert len(lines) == len(upstreams), lines
    for line, port in zip(lines, upstreams, strict=True):
        text = text.replace(line, re.sub(r":\d+ ", f":{port} ", line, count=1))
    text, n = re.subn(r"listen 8080;", f"listen 127.0.0.1:{listen};", text)
    assert n == 1, "deploy/nginx.conf no longer listens on 8080"
    return text


class Nginx:
    """nginx run in the foreground as this user, its prefix (logs, temp files) in a temp folder."""

    def __init__(self, upstreams: list[int]) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(binary, os.X_OK):
            raise Missing("nginx is not installed (Debian package nginx)")
        self.binary = binary
        self.port = free_port()
        self.prefix = Path(tempfile.mkdtemp(prefix="voxscope-nginx-"))
        # As root nginx's workers run as `nobody`: they must reach the temp folders.
        self.prefix.chmod(0o755)
        for sub in ("logs", "tmp"):
            (self.prefix / sub).mkdir(mode=0o755)
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(render_nginx(DEPLOY_CONF.read_text(), self.port, upstreams))
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> Nginx:
        self.proc = subprocess.Popen(
            [self.binary, "-p", f"{self.prefix}/", "-e", "logs/error.log", "-c", str(self.conf),
             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self.errors()}")
            try:
                httpx.get(f"{self.http}/health/live", timeout=2)
                return self
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"nginx did not answer: {self.errors()}"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.prefix, ignore_errors=True)

    def errors(self) -> str:
        with contextlib.suppress(OSError):
            return (self.prefix / "logs" / "error.log").read_text(errors="replace")[-3000:]
        return ""

    def access(self) -> list[tuple[str, str, int]]:
        """(method, path, upstream port) of each proxied request in the access log; the last
        upstream when nginx tried several."""
        out = []
        for line in (self.prefix / "logs" / "access.log").read_text(errors="replace").splitlines():
            # a failover reads `upstream=127.0.0.1:8001, 127.0.0.1:8002 upstream_status=502, 200`
            m = re.search(r'"(\w+) (\S+) [^"]*" \d+ \d+ upstream=(.*?) upstream_status=', line)
            # (` : ` separates the upstreams of an internal redirect)
            last = re.split(r",\s|\s:\s", m.group(3))[-1].strip() if m else "-"
            if m and last != "-":
                out.append((m.group(1), m.group(2), int(last.rsplit(":", 1)[1])))
        return out

    # what tests.support.sdk_at and tests.realtime.helpers.connect read
    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_inference(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api-ws/v1/inference"


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    """A private redis-server on a free loopback port (no persistence); yields the port."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise Missing("redis-server is not installed (Debian package redis-server)")
    port, workdir = free_port(), tempfile.mkdtemp(prefix="voxscope-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket_to(port) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start (exit {proc.poll()})")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def socket_to(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=1)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A private PostgreSQL cluster on a Unix socket in a temp folder; yields its database_url."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        raise Missing("PostgreSQL server binaries are not installed (Debian package postgresql)")
    root = Path(tempfile.mkdtemp(prefix="voxscope-pg-"))

    def as_postgres(cmd: list[str]) -> list[str]:
        # PostgreSQL refuses to run as root: run it as the `postgres` user when we are root.
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port, data = free_port(), root / "data"
    subprocess.run(as_postgres([f"{bins[-1]}/initdb", "-D", str(data), "-A", "trust", "-U",
                                "postgres"]), check=True, capture_output=True)
    subprocess.run(as_postgres([f"{bins[-1]}/pg_ctl", "-D", str(data), "-w", "-l",
                                str(root / "log"), "-o",
                                f"-k {root} -p {port} -c listen_addresses=''", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={root}&port={port}"
    finally:
        subprocess.run(as_postgres([f"{bins[-1]}/pg_ctl", "-D", str(data), "-m", "fast",
                                    "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
