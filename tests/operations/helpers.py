"""What the operations tests share: the real `voxscope keys` CLI against a server's data dir."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx

from tests.support import ServerProcess

CLI_TIMEOUT_S = 120  # generous: the machine is shared


def keys_cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess:
    """`voxscope keys ARGS` on the server's own data dir and config (as an operator runs it)."""
    return subprocess.run(
        [sys.executable, "-m", "voxscope.cli", "keys", *args, "--data-dir",
         str(server.workdir / "data"), "--config", str(server.workdir / "config.yaml")],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)


def create_key(server: ServerProcess, name: str, *options: str) -> str:
    """A new key from `voxscope keys create`: the one stdout line it prints."""
    out = keys_cli(server, "create", "--name", name, *options)
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip()
    assert key.startswith("sk-") and "\n" not in key, out.stdout
    return key


def key_id(server: ServerProcess, name: str) -> str:
    out = keys_cli(server, "list", "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return next(r["id"] for r in rows if r["name"] == name)


def wait_keyed(server: ServerProcess, bound_s: float = 30.0) -> None:
    """Until a server started without config keys refuses anonymous calls: it notices keys
    created in its database within its cache time (generous bound for a shared machine)."""
    deadline = time.monotonic() + bound_s
    while httpx.get(f"{server.http}/v1/models", timeout=30).status_code != 401:
        assert time.monotonic() < deadline, "server stayed open with a key in the database"
        time.sleep(0.25)
