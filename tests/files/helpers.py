"""Helpers for the async file-transcription acceptance tests (tests/files/).

- `AudioHost`: a real HTTP server on 127.0.0.1 (ThreadingHTTPServer in a thread) serving a temp
  folder, so `file_url`s are ordinary http:// links the server has to download.
- `WorkerProcess`: a `voxscope worker` child process (task workers only, no HTTP), analogous to
  `tests.support.ServerProcess`.
- `sdk_http`: points the official SDK's globals at a server.
- Checks for the two result documents (REST §2.6), the error envelope (REST §7.1) and the
  progress records in SQLite (`tasks`, `task_chunks`).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np

from tests.support import AUDIO_DIR, ChildProcess, clip, clip_pcm, manifest, norm_chars

QWEN = "qwen3-asr-flash-filetrans"
MAX_MEAN = {"en": 0.12, "zh": 0.15}  # the bars: mean WER (English), CER (Mandarin)
PARAFORMER = "paraformer-v2"
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"}
EN_CLIPS = [c["id"] for c in manifest() if c["lang"] == "en"]
ZH_CLIPS = [c["id"] for c in manifest() if c["lang"] == "zh"]


# -- the SDK's global configuration --------------------------------------------------------------


# -- serving audio over HTTP ---------------------------------------------------------------------
class _Handler(SimpleHTTPRequestHandler):
    """Static files; `/nolength/<name>` serves a file without Content-Length (close-delimited)."""

    host: AudioHost

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.host.requests.append(("GET", self.path))
        if self.path.startswith("/nolength/"):
            path = Path(self.directory) / self.path.removeprefix("/nolength/")
            if not path.is_file():
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            with contextlib.suppress(OSError), path.open("rb") as f:
                shutil.copyfileobj(f, self.wfile)
            self.close_connection = True
            return
        super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        self.host.requests.append(("HEAD", self.path))
        super().do_HEAD()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client that stops reading (a size limit doing its job) is expected, not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class AudioHost:
    """A static HTTP server on 127.0.0.1 over a temp folder (the manifest clips are copied in)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="voxscope-files-"))
        self.requests: list[tuple[str, str]] = []
        handler = type("Handler", (_Handler,), {"host": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), partial(handler, directory=str(self.root)))
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        for c in manifest():
            shutil.copy(AUDIO_DIR / c["path"], self.root / c["path"])

    def start(self) -> AudioHost:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def clip_url(self, clip_id: str) -> str:
        return self.url(clip(clip_id)["path"])

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return self.url(name)


# -- a `voxscope worker` process -----------------------------------------------------------------
@dataclass
class WorkerProcess(ChildProcess):
    """A `voxscope worker` child process (no HTTP); shares queue/DB through its config."""

    config: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    name: str = "worker"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="voxscope-worker-")))
    proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:  # type: ignore[override]
        return self.workdir / f"{self.name}.log"

    def start(self, settle_s: float = 2.0) -> WorkerProcess:
        cfg_path = self.write_config(f"{self.name}.yaml", self.config)
        proc = self.launch([sys.executable, "-m", "voxscope.cli", "worker", "--data-dir",
                            str(self.workdir / f"{self.name}-data"), "--config", str(cfg_path)],
                           self.env)
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:  # no readiness probe: it must at least not die at once
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}:\n{self.log()}")
            time.sleep(0.1)
        return self


# -- audio ---------------------------------------------------------------------------------------
def duration_s(clip_id: str) -> float:
    """The clip's real length (decoded), not the manifest's rounded figure."""
    return len(clip_pcm(clip_id)) / 2 / 16000


def concat_clips(ids: list[str], gap_s: float, rate: int = 16000) -> tuple[bytes, str, float]:
    """Clips joined with `gap_s` of silence between and after them: (s16le mono, reference, seconds)."""
    gap = np.zeros(int(gap_s * rate), dtype="<i2")
    parts: list[np.ndarray] = [gap]
    refs = []
    for cid in ids:
        parts.append(np.frombuffer(clip_pcm(cid, rate), "<i2"))
        parts.append(gap)
        refs.append(clip(cid)["reference"])
    pcm = np.concatenate(parts)
    return pcm.tobytes(), " ".join(refs), len(pcm) / rate


def stereo_pcm(left: bytes, right: bytes) -> bytes:
    """Two s16le mono signals as one interleaved stereo signal (the shorter padded with silence)."""
    a, b = np.frombuffer(left, "<i2"), np.frombuffer(right, "<i2")
    n = max(len(a), len(b))
    out = np.zeros((n, 2), dtype="<i2")
    out[: len(a), 0] = a
    out[: len(b), 1] = b
    return out.tobytes()


# -- responses -----------------------------------------------------------------------------------
def check_refused(resp, statuses=range(400, 500)) -> None:
    """An SDK response carrying DashScope's error envelope (REST §7.1) with a 4xx status."""
    assert resp.status_code in statuses, (resp.status_code, resp.code, resp.message)
    assert resp.code, resp
    assert resp.message, resp
    assert resp.request_id, resp
    assert resp.output is None, resp


def check_envelope(r: httpx.Response, statuses=range(400, 500)) -> dict:
    """A raw HTTP error answer: 4xx, JSON, `{request_id, code, message}` all non-empty strings."""
    assert r.status_code in statuses, (r.status_code, r.text[:500])
    assert "application/json" in r.headers.get("content-type", ""), r.headers
    body = r.json()
    for key in ("request_id", "code", "message"):
        assert isinstance(body.get(key), str) and body[key], (key, body)
    return body


def output_dict(resp) -> dict:
    """The response's `output` as a plain dict (TranscriptionOutput is a dict subclass)."""
    return json.loads(json.dumps(resp.output, default=str)) if resp.output is not None else {}


def get_doc(url: str) -> dict:
    """GET a transcription_url like a user would: plain HTTP, no Authorization header."""
    r = httpx.get(url, timeout=30)
    assert r.status_code == 200, (url, r.status_code, r.text[:500])
    assert "json" in r.headers.get("content-type", ""), r.headers
    return r.json()


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f")


def check_task_times(out: dict) -> None:
    """submit_time <= scheduled_time <= end_time, in DashScope's 'YYYY-MM-DD HH:MM:SS.mmm' form."""
    for key in ("submit_time", "scheduled_time", "end_time"):
        assert isinstance(out.get(key), str), (key, out)
    submit, scheduled, end = (parse_time(out[k]) for k in ("submit_time", "scheduled_time", "end_time"))
    assert submit <= scheduled <= end, out


def check_failed_task(out: dict) -> None:
    """A FAILED task (REST §2.2): code and message inside output."""
    assert out.get("task_status") == "FAILED", out
    assert isinstance(out.get("code"), str) and out["code"], out
    assert isinstance(out.get("message"), str) and out["message"], out


def bad_input_outcome(cls, submit, wait_timeout: int = 120) -> str:
    """A bad input must be refused at submit (4xx + envelope) or end as a FAILED task / file.

    For `Transcription` (file_urls) a task whose every file failed may be FAILED itself or report
    each file with `subtask_status: FAILED` and `code`/`message` (REST §2.2). Returns a short
    description for messages.
    """
    from dashscope.audio.asr import Transcription

    if submit.status_code != 200:
        check_refused(submit)
        return f"refused {submit.status_code} {submit.code}"
    task_id = submit.output["task_id"]
    w = cls.wait(task=task_id, wait_timeout=wait_timeout)
    assert w.status_code == 200, (w.status_code, w.code, w.message)
    out = output_dict(w)
    status = out.get("task_status")
    assert status in ("FAILED", "SUCCEEDED"), out
    if cls is Transcription and out.get("results"):
        if status == "SUCCEEDED":
            for res in out["results"]:
                assert res.get("subtask_status") == "FAILED", out
                assert res.get("code") and res.get("message"), out
                assert not res.get("transcription_url"), out
            return f"subtasks FAILED {[r['code'] for r in out['results']]}"
        check_failed_task(out)
        return f"FAILED {out['code']}"
    check_failed_task(out)
    return f"FAILED {out['code']}"


# -- result documents ----------------------------------------------------------------------------
def _check_sentence_times(sentences: list[dict], duration_ms: float, slack_ms: float = 300) -> None:
    prev_end = -1
    for s in sentences:
        b, e = s["begin_time"], s["end_time"]
        assert isinstance(b, int) and isinstance(e, int), s
        assert 0 <= b <= e <= duration_ms + slack_ms, (s, duration_ms)
        assert b >= prev_end - 50, ("sentences overlap or are out of order", s, prev_end)
        prev_end = e


def _check_words(sentence: dict, slack_ms: int = 100) -> None:
    words = sentence["words"]
    assert isinstance(words, list), sentence
    prev = sentence["begin_time"] - slack_ms
    for w in words:
        for key in ("begin_time", "end_time", "text", "punctuation"):
            assert key in w, (key, w)
        assert isinstance(w["text"], str) and isinstance(w["punctuation"], str), w
        assert sentence["begin_time"] - slack_ms <= w["begin_time"] <= w["end_time"] \
            <= sentence["end_time"] + slack_ms, ("word outside its sentence", w, sentence)
        assert w["begin_time"] >= prev - 50, ("words out of order", w)
        prev = w["end_time"]


def check_qwen_doc(doc: dict, file_url: str, duration_s: float, sample_rate: int | None = None,
                   channels: tuple[int, ...] = (0,), words: bool = False) -> dict[int, dict]:
    """The Qwen filetrans result document (REST §2.6); returns {channel_id: transcript}."""
    assert doc.get("file_url") == file_url, doc.get("file_url")
    info = doc.get("audio_info")
    assert isinstance(info, dict), doc
    assert isinstance(info.get("format"), str) and info["format"], info
    assert isinstance(info.get("sample_rate"), int), info
    if sample_rate is not None:
        assert info["sample_rate"] == sample_rate, info
    by_channel = {}
    for t in _transcripts(doc, channels):
        sentences = t.get("sentences")
        assert isinstance(sentences, list), t
        assert [s.get("sentence_id") for s in sentences] == list(range(len(sentences))), \
            ("Qwen sentence_id counts from 0", [s.get("sentence_id") for s in sentences])
        for s in sentences:
            for key in ("sentence_id", "begin_time", "end_time", "text", "language"):
                assert key in s, (key, s)
            assert isinstance(s["language"], str) and s["language"], s
            # No local model gives emotion: the field must be absent, not invented.
            assert "emotion" not in s, s
            if words:
                _check_words(s)
            else:
                assert "words" not in s, ("words without enable_words", s)
        _check_sentence_times(sentences, duration_s * 1000)
        assert norm_chars(t["text"]) == norm_chars("".join(s["text"] for s in sentences)), t
        by_channel[t["channel_id"]] = t
    return by_channel


def _transcripts(doc: dict, channels: tuple[int, ...]) -> list[dict]:
    """The document's transcripts: one per requested channel, in order, each with a text."""
    transcripts = doc.get("transcripts")
    assert isinstance(transcripts, list), doc
    assert [t.get("channel_id") for t in transcripts] == list(channels), transcripts
    for t in transcripts:
        assert isinstance(t.get("text"), str), t
    return transcripts


def check_paraformer_doc(doc: dict, file_url: str, duration_s: float, sample_rate: int | None = None,
                         channels: tuple[int, ...] = (0,), all_channels: tuple[int, ...] | None = None
                         ) -> dict[int, dict]:
    """The Paraformer / Fun-ASR result document (REST §2.6); returns {channel_id: transcript}."""
    assert doc.get("file_url") == file_url, doc.get("file_url")
    props = doc.get("properties")
    assert isinstance(props, dict), doc
    assert isinstance(props.get("audio_format"), str) and props["audio_format"], props
    # REST §2.6 shows `channels: [0]` for a mono file; whether it lists the file's tracks or the
    # selected ones is not documented, so either is accepted.
    assert props.get("channels") in (list(channels), list(all_channels or channels)), props
    assert isinstance(props.get("original_sampling_rate"), int), props
    if sample_rate is not None:
        assert props["original_sampling_rate"] == sample_rate, props
    dur_ms = props.get("original_duration_in_milliseconds")
    assert isinstance(dur_ms, int), props
    assert abs(dur_ms - duration_s * 1000) <= 150, (dur_ms, duration_s)
    by_channel = {}
    for t in _transcripts(doc, channels):
        content = t.get("content_duration_in_milliseconds")
        assert isinstance(content, int) and 0 <= content <= dur_ms, (content, dur_ms)
        sentences = t.get("sentences")
        assert isinstance(sentences, list), t
        assert [s.get("sentence_id") for s in sentences] == list(range(1, len(sentences) + 1)), \
            ("Paraformer sentence_id counts from 1", [s.get("sentence_id") for s in sentences])
        for s in sentences:
            for key in ("begin_time", "end_time", "text", "sentence_id", "words"):
                assert key in s, (key, s)
            assert "emotion" not in s, s
            _check_words(s)
            assert norm_chars("".join(w["text"] for w in s["words"])) == norm_chars(s["text"]), s
        _check_sentence_times(sentences, dur_ms)
        assert norm_chars(t["text"]) == norm_chars("".join(s["text"] for s in sentences)), t
        by_channel[t["channel_id"]] = t
    return by_channel


# -- progress records (SQLite) -------------------------------------------------------------------
def db_rows(db_path: Path, sql: str, params: tuple = ()) -> list[dict]:
    """Rows of a read-only query on the server's SQLite database ([] until the table exists)."""
    if not Path(db_path).exists():
        return []
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params).fetchall()]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        con.close()


def chunks_of(db_path: Path, task_id: str) -> list[dict]:
    return db_rows(db_path, "SELECT task_id, file_index, channel, seq, start_s, end_s, attempt, worker "
                            "FROM task_chunks WHERE task_id = ? ORDER BY file_index, channel, seq",
                   (task_id,))


def task_record(db_path: Path, task_id: str) -> dict | None:
    rows = db_rows(db_path, "SELECT id, status, attempts, worker, progress_s, duration_s FROM tasks "
                            "WHERE id = ?", (task_id,))
    return rows[0] if rows else None


def check_chunks_once(chunks: list[dict]) -> dict[tuple[int, int], list[dict]]:
    """Every (file, channel) stretch produced exactly once: unique seq, in time order, no overlap."""
    groups: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for c in chunks:
        groups[(c["file_index"], c["channel"])].append(c)
    for key, group in groups.items():
        seqs = Counter(c["seq"] for c in group)
        assert all(n == 1 for n in seqs.values()), ("duplicate chunk seq", key, seqs)
        group.sort(key=lambda c: c["seq"])
        for c in group:
            assert c["end_s"] > c["start_s"] >= 0, c
        for a, b in zip(group, group[1:], strict=False):
            assert b["start_s"] >= a["end_s"] - 1e-3, ("chunks overlap in time", key, a, b)
    return groups


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
