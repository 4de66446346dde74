"""What the operations tests share: the real `voxscope keys` CLI against a server's data dir, and
raw inference-socket tasks held open (sessions that count against a key's limit)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid

import httpx
import websocket

from tests.support import ServerProcess, silence_pcm

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


def run_task(url: str, key: str) -> tuple[websocket.WebSocket, dict]:
    """A raw run-task (as the SDK sends it); heartbeat keeps a silent task from idling out."""
    ws = websocket.create_connection(url, header=[f"Authorization: Bearer {key}"], timeout=60)
    ws.send(json.dumps({
        "header": {"action": "run-task", "task_id": uuid.uuid4().hex, "streaming": "duplex"},
        "payload": {"model": "paraformer-realtime-v2", "task_group": "audio", "task": "asr",
                    "function": "recognition", "input": {},
                    "parameters": {"format": "pcm", "sample_rate": 16000, "heartbeat": True}}}))
    return ws, json.loads(ws.recv())


class HeldTask:
    """A started recognition task kept alive with silence until finished."""

    def __init__(self, ws: websocket.WebSocket, started: dict) -> None:
        assert started["header"]["event"] == "task-started", started
        self.ws, self.task_id = ws, started["header"]["task_id"]
        self._stop = threading.Event()
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()

    @classmethod
    def open(cls, url: str, key: str) -> HeldTask:
        return cls(*run_task(url, key))

    def _feed(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.ws.send_binary(silence_pcm(0.2))
            except Exception:  # noqa: BLE001 - the socket closed (a killed server); fine here
                return

    def finish(self) -> str:
        self._stop.set()
        self._feeder.join()
        self.ws.send(json.dumps({"header": {"action": "finish-task", "task_id": self.task_id,
                                            "streaming": "duplex"}, "payload": {"input": {}}}))
        while True:
            event = json.loads(self.ws.recv())["header"]["event"]
            if event in ("task-finished", "task-failed"):
                self.ws.close()
                return event

    def drop(self) -> None:
        """Vanish without finish-task (a client that goes away)."""
        self._stop.set()
        self._feeder.join()
        self.ws.close()
