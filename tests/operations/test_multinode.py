"""Several machines behind nginx (issue 10, section 7): the shipped `deploy/nginx.conf` (only its
ports replaced) in front of two `voxscope serve` processes, one extra `voxscope worker`, one
Redis (queue, shared limits) and one PostgreSQL (tasks, keys), all real processes. Through nginx's
single address:

- realtime (official SDK: `Recognition`, `OmniRealtimeConversation`) and file tasks work and are
  spread over both servers (nginx's access log names the server of each request; each server's
  /metrics counts the sessions it ran);
- a key made with `voxscope keys create` works on both servers, a token minted through nginx works
  on each, and once revoked both stop accepting them;
- a per-key session limit of N holds across both servers (N+K at once: exactly K refusals);
- `kill -9` of one server while realtime sessions and file tasks run: the survivor's session ends
  normally, new sessions and submissions through nginx succeed, and the killed server's file task
  finishes elsewhere with the same transcript as the uninterrupted copies of the same file.

Assertions are on codes, content and order; time bounds are generous (a shared machine). Skipped
(with the reason) when nginx, redis-server or PostgreSQL are missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
import websocket
from dashscope.audio.asr import Recognition
from dashscope.audio.qwen_asr import QwenTranscription

from tests.conftest import FAST_ENV
from tests.files.helpers import QWEN, AudioHost, WorkerProcess, concat_clips, get_doc, output_dict
from tests.files.test_postgres import pg_url  # noqa: F401 - the module's PostgreSQL cluster
from tests.files.test_scale_out import redis_port  # noqa: F401 - the module's Redis
from tests.operations.helpers import create_key, key_id, keys_cli, wait_keyed
from tests.operations.multinode_support import Missing, Nginx
from tests.realtime.helpers import COMPLETED, close_quietly, connect, send, silence, update
from tests.support import (
    ServerProcess,
    clip,
    clip_pcm,
    error_rate,
    norm_words,
    sdk_at,
    silence_pcm,
    wav_bytes,
)

QUOTA = "Throttling.AllocationQuota"
BOUND_S = float(os.environ.get("VOXSCOPE_TEST_MULTINODE_BOUND_S", "30"))  # generous; promise: 5 s
LEASE_S = 5  # a killed server's running task is taken over after this
SESSION_LIMIT, EXTRA = 2, 2
REALTIME_CLIPS = ["en_librispeech_1995-1837-0001", "en_beckett"]
FILE_CLIPS = ["en_jfk_inaugural", "en_ljspeech_LJ001-0001", "zh_funasr_asr_example",
              "en_fleurs_000"]
# ~33 s: shorter than checkpoint_s (60), so a task taken over starts again from its beginning and
# must give exactly the text of an uninterrupted run
LONG_CLIPS = ["en_jfk_inaugural", "en_librispeech_1995-1837-0001", "en_ljspeech_LJ001-0001"]


@dataclass
class Cluster:
    a: ServerProcess
    b: ServerProcess
    worker: WorkerProcess
    nginx: Nginx
    key: str
    pg: str
    host: AudioHost

    @property
    def servers(self) -> list[ServerProcess]:
        return [self.a, self.b]


@pytest.fixture(scope="module")
def cluster(pg_url, redis_port):  # noqa: F811 - the imported fixtures
    host = AudioHost().start()
    common = {"queue_url": f"redis://127.0.0.1:{redis_port}/0", "database_url": pg_url,
              "secret_key": "multinode-test-secret", "fetch_allow_private": True,
              "task_lease_s": LEASE_S, "cpu_threads": 1, "workers": 1, "max_sessions": 8}
    a, b = (ServerProcess(env=FAST_ENV, config={"server": common}) for _ in range(2))
    worker = WorkerProcess(config={"server": common}, name="worker")
    nginx = None
    try:
        try:
            nginx = Nginx([a.port, b.port])
        except Missing as exc:
            pytest.skip(f"{exc}; scripts/test.sh installs it")
        with ThreadPoolExecutor(3) as pool:  # model loads overlap
            for f in [pool.submit(p.start) for p in (a, b, worker)]:
                f.result()
        nginx.start()
        key = create_key(a, "app")  # on one machine; the database shares it
        for s in (a, b):
            wait_keyed(s)
        yield Cluster(a, b, worker, nginx, key, pg_url.replace("postgresql+psycopg://",
                                                                "postgresql://"), host)
    finally:
        if nginx is not None:
            nginx.stop()
        for p in (worker, b, a):
            with contextlib.suppress(Exception):
                p.stop()
        host.stop()


def _metric(server: ServerProcess, name: str) -> float:
    """Sum of a metric's samples on one server (its own /metrics, not through nginx)."""
    text = httpx.get(f"{server.http}/metrics", timeout=30).text
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text,
                                                        re.M))


def _ports(cluster: Cluster, since: int, prefix: str) -> set[int]:
    return {port for _, path, port in cluster.nginx.access()[since:] if path.startswith(prefix)}


# -- realtime clients --------------------------------------------------------------------------------
def _recognize(gw: Nginx, clip_id: str) -> str:
    r = Recognition(model="paraformer-realtime-v2", format="wav", sample_rate=16000, callback=None)
    res = r.call(str(clip(clip_id)["file"]))
    assert res.status_code == 200, (res.status_code, res.code, res.message)
    return " ".join(s["text"] for s in res.get_sentence())


def _converse(gw: Nginx, key: str, clip_id: str) -> str:
    conv, rec = connect(gw, api_key=key)
    try:
        update(conv, language=clip(clip_id)["lang"])
        send(conv, silence(0.3) + clip_pcm(clip_id) + silence(1.5), 3200, pace=0.02)
        conv.end_session(timeout=120)
    finally:
        close_quietly(conv)
    return " ".join(e["transcript"] for e in rec.events if e.get("type") == COMPLETED)


class Held:
    """A raw inference WebSocket task through nginx, kept alive with silence until finished.

    A reader thread takes every event as it comes, as the SDK does: websocket-client answers the
    server's pings only while it reads, and an unanswered ping ends the connection."""

    def __init__(self, url: str, key: str) -> None:
        self.ws = websocket.create_connection(url, header=[f"Authorization: Bearer {key}"],
                                              timeout=120)
        self.task_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"action": "run-task", "task_id": self.task_id, "streaming": "duplex"},
            "payload": {"model": "paraformer-realtime-v2", "task_group": "audio", "task": "asr",
                        "function": "recognition", "input": {},
                        "parameters": {"format": "pcm", "sample_rate": 16000,
                                       "heartbeat": True}}}))
        self.first = json.loads(self.ws.recv())["header"]
        self.end: str | None = None  # task-finished, task-failed, or closed
        self.ended = threading.Event()
        self._stop = threading.Event()
        if self.started:
            threading.Thread(target=self._read, daemon=True).start()
            threading.Thread(target=self._feed, daemon=True).start()
        else:
            self.ws.close()

    @property
    def started(self) -> bool:
        return self.first["event"] == "task-started"

    def _read(self) -> None:
        try:
            while True:
                event = json.loads(self.ws.recv())["header"]["event"]
                if event in ("task-finished", "task-failed"):
                    self.end = event
                    break
        except (websocket.WebSocketException, OSError, ValueError):
            self.end = "closed"
        self.ended.set()

    def _feed(self) -> None:
        while not self._stop.wait(0.1) and not self.ended.is_set():
            try:
                self.ws.send_binary(silence_pcm(0.1))
            except Exception:  # noqa: BLE001 - the socket closed; the reader reports it
                return

    def finish(self) -> str:
        """How the task ended: `task-finished`, `task-failed`, or `closed` (connection broke)."""
        self._stop.set()
        with contextlib.suppress(websocket.WebSocketException, OSError):
            self.ws.send(json.dumps({"header": {"action": "finish-task", "task_id": self.task_id,
                                                "streaming": "duplex"}, "payload": {"input": {}}}))
        self.ended.wait(timeout=BOUND_S * 4)
        with contextlib.suppress(Exception):
            self.ws.close()
        return self.end or "no answer"


# -- file tasks ----------------------------------------------------------------------------------------
def _submit(url: str) -> str:
    r = QwenTranscription.async_call(model=QWEN, file_url=url)
    assert r.status_code == 200, (r.status_code, r.code, r.message)
    return r.output.task_id


def _result(gw: Nginx, task_id: str) -> str:
    w = QwenTranscription.wait(task=task_id, wait_timeout=600)
    assert w.status_code == 200 and w.output.task_status == "SUCCEEDED", output_dict(w)
    url = w.output["result"]["transcription_url"]
    assert url.startswith(gw.http + "/"), ("links must point at the balancer", url)
    return get_doc(url)["transcripts"][0]["text"]


def _task_rows(cluster: Cluster, ids: list[str]) -> dict[str, tuple]:
    import psycopg

    with psycopg.connect(cluster.pg) as conn:
        rows = conn.execute("select id, status, attempts, worker from tasks where id = any(%s)",
                            (ids,)).fetchall()
    return {r[0]: r[1:] for r in rows}


def _pid(worker_id: str | None) -> int | None:
    parts = (worker_id or "").split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


# -- the tests --------------------------------------------------------------------------------------
@pytest.mark.timeout(400)
def test_realtime_and_file_tasks_spread_over_both_servers(cluster):
    gw, since = cluster.nginx, len(cluster.nginx.access())
    before = [_metric(s, "voxscope_audio_seconds_total") for s in cluster.servers]
    with sdk_at(gw, cluster.key):
        tasks = {cid: _submit(cluster.host.clip_url(cid)) for cid in FILE_CLIPS}
        with ThreadPoolExecutor(4) as pool:  # sessions at once: least_conn spreads them
            jobs = [(cid, pool.submit(_recognize, gw, cid)) for cid in REALTIME_CLIPS]
            jobs += [(cid, pool.submit(_converse, gw, cluster.key, cid)) for cid in REALTIME_CLIPS]
            for cid, job in jobs:
                text = job.result()
                c = clip(cid)
                assert error_rate(c["lang"], c["reference"], text) <= 0.35, (cid, text)
        for cid, task_id in tasks.items():
            text = _result(gw, task_id)
            c = clip(cid)
            assert error_rate(c["lang"], c["reference"], text) <= 0.35, (cid, text)
    ports = {s.port for s in cluster.servers}
    assert _ports(cluster, since, "/api-ws/") == ports, cluster.nginx.access()[since:]
    assert _ports(cluster, since, "/api/v1/services/") == ports, cluster.nginx.access()[since:]
    after = [_metric(s, "voxscope_audio_seconds_total") for s in cluster.servers]
    assert all(x > y for x, y in zip(after, before, strict=True)), (before, after)


@pytest.mark.timeout(300)
def test_key_and_token_work_on_both_and_revoke_stops_both(cluster):
    key = create_key(cluster.b, "doomed")

    def status(base: str, credential: str) -> int:
        return httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {credential}"},
                         timeout=60).status_code

    bases = [s.http for s in cluster.servers]
    for base in [*bases, cluster.nginx.http]:
        assert status(base, key) == 200, base  # the database is shared: no wait needed
    minted = httpx.post(f"{cluster.nginx.http}/api/v1/tokens?expire_in_seconds=600",
                        headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert minted.status_code == 200, minted.text
    token = minted.json()["token"]
    for base in bases:  # minted on one of them, used on each
        assert status(base, token) == 200, base
    assert keys_cli(cluster.a, "revoke", key_id(cluster.a, "doomed")).returncode == 0
    revoked_at = time.monotonic()
    for base in bases:
        for credential in (key, token):
            while status(base, credential) != 401:
                assert time.monotonic() - revoked_at < BOUND_S, ("still accepted", base)
                time.sleep(0.2)
    print(f"\nrevoked key and token refused by both servers after "
          f"{time.monotonic() - revoked_at:.1f} s")
    assert status(cluster.nginx.http, cluster.key) == 200  # other keys unaffected


@pytest.mark.timeout(300)
def test_session_limit_holds_across_both_servers(cluster):
    key = create_key(cluster.a, "limited", "--max-sessions", str(SESSION_LIMIT))
    deadline = time.monotonic() + BOUND_S
    while any(_metric(s, "voxscope_sessions") for s in cluster.servers):
        # an earlier test's session still ending would tilt least_conn towards the other server
        assert time.monotonic() < deadline, "sessions of earlier tests never ended"
        time.sleep(0.2)
    held = []
    try:
        for _ in range(SESSION_LIMIT + EXTRA):  # one after another: least_conn alternates
            held.append(Held(cluster.nginx.ws_inference, key))
        started = [h for h in held if h.started]
        refused = [h.first for h in held if not h.started]
        assert len(refused) == EXTRA, [h.first for h in held]
        assert all(f["event"] == "task-failed" and f["error_code"] == QUOTA for f in refused), \
            refused
        live = [_metric(s, "voxscope_sessions") for s in cluster.servers]
        # The limit counts the key's sessions wherever nginx put them. They usually land one on
        # each server; nginx may also put both on one (a server marked failed for fail_timeout
        # after an earlier test's error, seen once in CI), and the limit must hold either way
        # (across two servers deterministically: tests/operations/test_limits_redis.py).
        assert sum(live) == SESSION_LIMIT, ("the admitted sessions", live)
        print(f"\nadmitted sessions per server: {live}")
    finally:
        outcomes = [h.finish() for h in held if h.started]
    assert outcomes == ["task-finished"] * len(started), outcomes
    again = Held(cluster.nginx.ws_inference, key)  # the sessions ended: the key may start one
    assert again.started, again.first
    assert again.finish() == "task-finished"


@pytest.mark.timeout(600)
def test_kill9_one_server_survivor_takes_over(cluster):
    gw, a, b = cluster.nginx, cluster.a, cluster.b
    pcm, _, _ = concat_clips(LONG_CLIPS, gap_s=1.0)
    urls = [cluster.host.put(f"long-{i}.wav", wav_bytes(pcm)) for i in range(3)]
    held = [Held(gw.ws_inference, cluster.key) for _ in range(2)]
    assert all(h.started for h in held), [h.first for h in held]
    per_server = [_metric(s, "voxscope_sessions") for s in cluster.servers]
    with sdk_at(gw, cluster.key):
        ids = [_submit(u) for u in urls]  # three workers (a, b, the worker) take one each
        deadline = time.monotonic() + BOUND_S * 4
        while True:  # until a's own worker runs one of them
            rows = _task_rows(cluster, ids)
            on_a = [i for i, (st, _, w) in rows.items() if st == "RUNNING" and _pid(w) == a.proc.pid]
            if on_a:
                break
            assert time.monotonic() < deadline, ("a never ran a task", rows)
            time.sleep(0.05)
        a.stop(kill=True)  # kill -9, process group included
        victim, since = on_a[0], len(gw.access())
        # New work through the one address lands on the survivor.
        more = [_submit(cluster.host.clip_url(cid)) for cid in FILE_CLIPS[:2]]
        for cid in REALTIME_CLIPS:
            c = clip(cid)
            text = _recognize(gw, cid)
            assert error_rate(c["lang"], c["reference"], text) <= 0.35, (cid, text)
        outcomes = sorted(h.finish() for h in held)
        texts = {i: _result(gw, i) for i in ids}
        for cid, task_id in zip(FILE_CLIPS, more, strict=False):
            c = clip(cid)
            text = _result(gw, task_id)
            assert error_rate(c["lang"], c["reference"], text) <= 0.35, (cid, text)
    # The survivor's session ended normally; the killed server's broke (it cannot be saved).
    assert "task-finished" in outcomes, outcomes
    if per_server == [1, 1]:
        assert outcomes.count("task-finished") == 1, outcomes
    # Nothing accepted was lost: the killed task finished elsewhere, with the same transcript.
    rows = _task_rows(cluster, ids + more)
    assert all(st == "SUCCEEDED" for st, _, _ in rows.values()), rows
    status, attempts, worker = rows[victim]
    assert attempts == 2 and _pid(worker) in (b.proc.pid, cluster.worker.proc.pid), rows[victim]
    words = {i: norm_words(t) for i, t in texts.items()}
    for i in ids:
        assert words[i] == words[victim], ("a taken-over task's text differs", texts)
    assert httpx.get(f"{b.http}/health/ready", timeout=30).status_code == 200
    # Whatever nginx tried first, every request made after the kill was answered by the survivor
    # (the log line of a WebSocket is written when it closes: a's sessions cut by the kill too).
    after = gw.access()[since:]
    assert {port for _, path, port in after if not path.startswith("/api-ws/")} == {b.port}, after
    assert len([e for e in after if e[2] == a.port]) <= per_server[0], (per_server, after)
