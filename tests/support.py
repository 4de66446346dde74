"""Test support: real `voxscope serve` subprocesses, real clips, scoring.

Every protocol test talks to a real server process over real sockets with the official SDK.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

import av
import httpx
import numpy as np
import yaml

AUDIO_DIR = Path(os.environ.get("VOXSCOPE_TEST_AUDIO", Path(__file__).resolve().parents[2] /
                                "shared" / "audio"))
if not AUDIO_DIR.is_dir():  # a checkout next to shared/ (CI) or the session layout
    AUDIO_DIR = Path("/work/shared/audio")


class CallbackLog:
    """What the SDK callback recorders share: every callback in arrival order (a `Call` with the
    arrival time and its kind), and `done` set by on_complete / on_error. Subclasses name their
    `Call` type and add on_event / on_error and their own views."""

    Call: type

    def __init__(self) -> None:
        self.calls: list = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def _add(self, call) -> None:
        with self.lock:
            self.calls.append(call)

    def on_open(self) -> None:
        self._add(self.Call(time.monotonic(), "open"))

    def on_complete(self) -> None:
        self._add(self.Call(time.monotonic(), "complete"))
        self.done.set()

    def on_close(self) -> None:
        self._add(self.Call(time.monotonic(), "close"))

    def reset(self) -> None:
        with self.lock:
            self.calls = []
        self.done.clear()

    def kinds(self) -> list[str]:
        return [c.kind for c in self.calls]

    def events(self) -> list:
        return [c for c in self.calls if c.kind == "event"]

    def summary(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"Recorder({self.summary()})"


@contextlib.contextmanager
def sdk_at(server, api_key: str = "test-key"):
    """The dashscope SDK's globals (key, WebSocket and HTTP base URLs) pointed at `server` for
    the block; restored afterwards. Yields the `dashscope` module."""
    import dashscope

    saved = (dashscope.api_key, dashscope.base_websocket_api_url, dashscope.base_http_api_url)
    dashscope.api_key = api_key
    dashscope.base_websocket_api_url = server.ws_inference
    dashscope.base_http_api_url = server.http + "/api/v1"
    try:
        yield dashscope
    finally:
        dashscope.api_key, dashscope.base_websocket_api_url, dashscope.base_http_api_url = saved


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChildProcess:
    """A voxscope command run as a child process in its own session, logging to a file."""

    workdir: Path
    proc: subprocess.Popen | None
    log_path: Path

    def launch(self, cmd: list[str], env: dict) -> subprocess.Popen:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **{k: str(v) for k, v in env.items()}},
                                     start_new_session=True)
        return self.proc

    def write_config(self, name: str, config: dict) -> Path:
        path = self.workdir / name
        path.write_text(yaml.safe_dump(config))
        return path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (or SIGKILL) the whole process group; SIGKILL if it does not end in 30 s."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None
        self._log.close()


@dataclass
class ServerProcess(ChildProcess):
    """A `voxscope serve` child process with its own data dir, config file and log."""

    config: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="voxscope-test-")))
    proc: subprocess.Popen | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_inference(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api-ws/v1/inference"

    @property
    def ws_realtime(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api-ws/v1/realtime"

    @property
    def log_path(self) -> Path:  # type: ignore[override]
        return self.workdir / "server.log"

    def start(self, timeout: float = 120.0) -> ServerProcess:
        cfg_path = self.write_config("config.yaml", self.config)
        env = dict(self.env)
        if "admit_max_load" not in (self.config.get("server") or {}):
            # Admission by measured load depends on how busy the machine is: off unless a test or
            # benchmark asks for it, so tests that run several streams never race the CPU.
            env.setdefault("VOXSCOPE_ADMIT_MAX_LOAD", "0")
        self.launch([sys.executable, "-m", "voxscope.cli", "serve", "--port", str(self.port),
                     "--data-dir", str(self.workdir / "data"), "--config", str(cfg_path),
                     "--log-level", "warning", *self.args], env)
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.http + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not become ready:\n{self.log()}")

    def health(self, key: str | None = None) -> dict:
        # With keys only a caller with a key sees more than {"status": "ok"}: `key` (e.g. one
        # made by `voxscope keys create`), else the first config key, if any.
        keys = self.config.get("api_keys") or (self.config.get("server") or {}).get("api_keys")
        key = key or (keys[0] if keys else None)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.get(self.http + "/health", headers=headers, timeout=5).json()


# -- audio -------------------------------------------------------------------------------------
@cache
def manifest() -> list[dict]:
    return [json.loads(line) for line in (AUDIO_DIR / "manifest.jsonl").read_text().splitlines()
            if line.strip()]


def clip(clip_id: str) -> dict:
    for c in manifest():
        if c["id"] == clip_id:
            return {**c, "file": AUDIO_DIR / c["path"]}
    raise KeyError(clip_id)


@lru_cache(maxsize=64)
def pcm16(path: str | Path, rate: int = 16000) -> bytes:
    """Any file -> raw s16le mono at `rate`, decoded and resampled by PyAV (FFmpeg)."""
    out = []
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for f in resampler.resample(frame):
                out.append(f.to_ndarray().reshape(-1))
    for f in resampler.resample(None):
        out.append(f.to_ndarray().reshape(-1))
    return np.concatenate(out).astype("<i2").tobytes()


def clip_pcm(clip_id: str, rate: int = 16000) -> bytes:
    """A manifest clip as raw s16le mono at `rate`."""
    return pcm16(str(clip(clip_id)["file"]), rate)


def trim_silence(pcm: bytes, rate: int = 16000, rel: float = 0.05, pad_s: float = 0.05) -> bytes:
    """Cut leading/trailing low-energy audio (10 ms frames under `rel` x the loudest frame)."""
    x = np.frombuffer(pcm, "<i2").astype(np.float64)
    hop = rate // 100
    n = len(x) // hop
    energy = np.sqrt((x[: n * hop].reshape(n, hop) ** 2).mean(axis=1))
    loud = np.nonzero(energy > rel * energy.max())[0]
    pad = int(pad_s * 100)
    begin, end = max(int(loud[0]) - pad, 0) * hop, min(int(loud[-1]) + 1 + pad, n) * hop
    return pcm[2 * begin : 2 * end]


def silence_pcm(seconds: float, rate: int = 16000) -> bytes:
    return bytes(int(seconds * rate) * 2)


def wav_bytes(pcm: bytes, rate: int = 16000, channels: int = 1) -> bytes:
    import struct
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * 2 * channels,
                                    2 * channels, 16)
    header += b"data" + struct.pack("<I", len(pcm))
    return header + pcm


# -- scoring -----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC
    return OpenCC("t2s")


_NUMBERS = {"25": "twenty five", "30": "thirty"}


def norm_words(text: str) -> list[str]:
    """Lower-case, drop punctuation, spell the few digits the references spell out."""
    text = text.lower()
    text = re.sub(r"[^\w\s']", " ", text)
    words = []
    for w in text.split():
        words.extend(_NUMBERS.get(w, w).split())
    return words


def norm_chars(text: str) -> str:
    """Simplified characters, no spaces or punctuation (CER scoring for zh/ja)."""
    return "".join(ch for ch in _t2s().convert(text) if ch.isalnum())


def error_rate(lang: str, reference: str, hypothesis: str) -> float:
    import jiwer
    if lang in ("zh", "ja"):
        ref, hyp = norm_chars(reference), norm_chars(hypothesis)
        return jiwer.cer(ref, hyp) if ref else float(bool(hyp))
    ref_w, hyp_w = norm_words(reference), norm_words(hypothesis)
    return jiwer.wer(" ".join(ref_w), " ".join(hyp_w)) if hyp_w else 1.0


def sdk_start_waits(r, timeout_s: float = 10.0) -> None:
    """Make an SDK recognizer's audio loop (`_input_stream_cycle`, run by its worker thread) begin
    only once `start()` has set `_running`, or `stop()` was called since (a burst may start and
    stop before the worker looks).

    dashscope 2.0.2's `Recognition.start()` (and the Gummy recognizers') starts the worker thread
    and only then sets `_running`; a worker that reaches its audio loop first sends finish-task
    with no audio. `start()` then either raises `InvalidTask` or, if the worker is still alive at
    its check, returns normally while every frame sent afterwards goes nowhere ("open; complete;
    close", no result: tests/hardening/test_sdk_start_race.py). A loaded 2-core machine loses
    that race now and then; the server did nothing wrong.
    """
    cycle = type(r)._input_stream_cycle

    def waiting_cycle():
        deadline = time.monotonic() + timeout_s
        while (not r._running and getattr(r, "_stop_stream_timestamp", -1) < 0
               and time.monotonic() < deadline):
            time.sleep(0.005)
        yield from cycle(r)

    r._input_stream_cycle = waiting_cycle
