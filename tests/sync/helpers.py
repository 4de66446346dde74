"""Helpers of the sync-recognition tests (tests/sync/).

- `AudioHost`: a real HTTP server on 127.0.0.1 (ThreadingHTTPServer in a thread) serving a temp
  folder, plus a few misbehaving routes for the fetcher (redirects, a slow body, an endless body).
- `sdk_http`: points the official SDK at a server's REST base URL with a key.
- `RequestLog`: records every HTTP request the SDK's `requests` sessions send (to check the
  upload flow of REST §4 from the wire).
- `msgs`, `check_message`: the matrix's message list and the row-56 response checks.
- audio makers: data URIs, an MP3 re-encoding, long WAVs made by concatenating real clips.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

from tests.audio.media import encode
from tests.support import AUDIO_DIR, clip, clip_pcm, wav_bytes

MODEL = "qwen3-asr-flash"


def msgs(audio: str, context: str = "") -> list[dict]:
    return [{"role": "system", "content": [{"text": context}]},
            {"role": "user", "content": [{"audio": audio}]}]


def text_of(response) -> str:
    return response.output.choices[0].message.content[0]["text"]


def check_message(r) -> str:
    """Matrix row 56's checks on a non-stream response; returns the transcript."""
    assert r.status_code == 200, (r.status_code, r.code, r.message)
    assert r.request_id
    choice = r.output.choices[0]
    assert choice.finish_reason == "stop"
    message = choice.message
    assert message.role == "assistant"
    ann = message["annotations"][0]
    assert ann["type"] == "audio_info" and ann["language"], ann
    # emotion is deliberately absent: no local model recognises it (README).
    assert "emotion" not in ann, ann
    assert isinstance(r.usage["seconds"], int) and r.usage["seconds"] >= 1, r.usage
    assert isinstance(r.usage["output_tokens_details"]["text_tokens"], int)
    assert isinstance(r.usage["input_tokens_details"]["text_tokens"], int)
    return message.content[0]["text"]




@dataclass
class Sent:
    method: str
    url: str
    headers: dict
    body: bytes
    status: int


@dataclass
class RequestLog:
    """Every request sent through requests.Session while active (the SDK's HTTP client)."""

    sent: list[Sent] = field(default_factory=list)

    @contextlib.contextmanager
    def active(self) -> Iterator[RequestLog]:
        import requests

        original = requests.Session.send
        log = self

        def send(session, request, **kwargs):
            response = original(session, request, **kwargs)
            body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
            log.sent.append(Sent(request.method, request.url, dict(request.headers), body,
                                 response.status_code))
            return response

        requests.Session.send = send
        try:
            yield self
        finally:
            requests.Session.send = original


# -- audio -------------------------------------------------------------------------------------
@cache
def clip_bytes(clip_id: str) -> bytes:
    return Path(clip(clip_id)["file"]).read_bytes()


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@cache
def mp3_of(clip_id: str) -> bytes:
    x = np.frombuffer(clip_pcm(clip_id), "<i2").astype(np.float32) / 32768.0
    return encode(x, 16000, "libmp3lame", "mp3", bit_rate=64000)


def long_wav(seconds: float, rate: int) -> bytes:
    """Real speech clips end to end (with short pauses) until `seconds` long, as WAV at `rate`."""
    pieces, total = [], 0
    ids = ["en_jfk_inaugural", "en_librispeech_1995-1837-0001", "en_ljspeech_LJ001-0001", "en_beckett"]
    pause = bytes(int(0.5 * rate) * 2)
    while total < seconds * rate * 2:
        for cid in ids:
            pieces += [clip_pcm(cid, rate), pause]
            total += len(pieces[-2]) + len(pause)
    pcm = b"".join(pieces)[: int(seconds * rate) * 2]
    return wav_bytes(pcm, rate)


# -- an HTTP host for audio URLs ----------------------------------------------------------------
class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif parts.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif parts.path == "/slow":  # headers at once, then a trickle
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(100):
                    self.wfile.write(b"\0" * 10)
                    self.wfile.flush()
                    time.sleep(0.2)
        elif parts.path == "/endless":  # no Content-Length, never ends
            self.send_response(200)
            self.end_headers()
            with contextlib.suppress(OSError):
                while True:
                    self.wfile.write(b"\0" * 65536)
        elif parts.path == "/error":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            super().do_GET()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients that hang up early (size caps, timeouts) are part of the tests


class AudioHost:
    """Serves files from a temp folder on http://127.0.0.1:<port>/ in a background thread."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="voxscope-audio-host-"))
        handler = lambda *a, **kw: _Handler(*a, directory=str(self.root), **kw)  # noqa: E731
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> AudioHost:
        self.thread.start()
        return self

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return f"{self.base}/{name}"

    def put_clip(self, clip_id: str) -> str:
        c = clip(clip_id)
        target = self.root / Path(c["path"]).name
        if not target.exists():
            shutil.copyfile(AUDIO_DIR / c["path"], target)
        return f"{self.base}/{target.name}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        shutil.rmtree(self.root, ignore_errors=True)
