"""Per-key limits across two servers sharing one Redis (`queue_url`) and one PostgreSQL (keys):
a key allowed 2 sessions gets exactly 1 `Throttling.AllocationQuota` refusal for 3 sessions
opened at once over both servers; its requests per second are counted over both; the sessions of
a `kill -9`ed server are released once their lease runs out (while it lives, it renews them);
other keys are unaffected. With its Redis unreachable a server still enforces the limits, in its
own process. Assertions are on codes and order; the only clock used is the limiter's own
one-second window and lease (generous bounds). Skipped when redis-server or the PostgreSQL
binaries are missing."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import websocket

from tests.files.test_postgres import pg_url  # noqa: F401 - the module's PostgreSQL cluster
from tests.files.test_scale_out import redis_port  # noqa: F401 - the module's Redis
from tests.operations.helpers import HeldTask, create_key, run_task, wait_keyed
from tests.support import ServerProcess, free_port

QUOTA = "Throttling.AllocationQuota"
RATE = "Throttling.RateQuota"
LEASE_S = 6  # a dead server's sessions are freed after this (short, for the test)
POLL_BOUND_S = 60.0  # generous on a shared machine


def _config(pg: str, queue: str) -> dict:
    # workers: 0: these servers run no file tasks; the Redis here serves the limits
    return {"server": {"database_url": pg, "queue_url": queue, "max_sessions": 6, "workers": 0,
                       "session_lease_s": LEASE_S}}


@pytest.fixture(scope="module")
def pair(pg_url, redis_port):  # noqa: F811 - the imported fixtures
    queue = f"redis://127.0.0.1:{redis_port}/0"
    servers = [ServerProcess(config=_config(pg_url, queue)).start() for _ in range(2)]
    create_key(servers[0], "bootstrap")
    for s in servers:
        wait_keyed(s)
    yield servers
    for s in servers:
        s.stop()


def _refused(url: str, key: str) -> dict:
    ws, event = run_task(url, key)
    ws.close()
    return event


def test_session_limit_holds_across_both_servers(pair):
    a, b = pair
    key, other = create_key(a, "two", "--max-sessions", "2"), create_key(b, "other")
    with ThreadPoolExecutor(3) as pool:  # three at once, over both servers
        opened = list(pool.map(lambda url: run_task(url, key),
                               [a.ws_inference, b.ws_inference, a.ws_inference]))
    started = [HeldTask(ws, e) for ws, e in opened if e["header"]["event"] == "task-started"]
    failed = [(ws, e) for ws, e in opened if e["header"]["event"] != "task-started"]
    try:
        assert len(started) == 2 and len(failed) == 1, [e for _, e in opened]
        ws, event = failed[0]
        ws.close()
        assert event["header"]["event"] == "task-failed", event
        assert event["header"]["error_code"] == QUOTA, event
        # full on both servers, whichever holds its sessions
        for server in pair:
            assert _refused(server.ws_inference, key)["header"]["error_code"] == QUOTA
        rt = websocket.create_connection(f"{b.ws_realtime}?model=qwen3-asr-flash-realtime",
                                         header=[f"Authorization: Bearer {key}"], timeout=60)
        event = json.loads(rt.recv())
        rt.close()
        assert event["type"] == "error" and event["error"]["code"] == QUOTA, event
        for server in pair:  # another key is not affected
            assert HeldTask.open(server.ws_inference, other).finish() == "task-finished"
    finally:
        for held in started:  # the running sessions were never harmed
            assert held.finish() == "task-finished"
    # both ended: the key may run two again, one on each server
    again = [HeldTask.open(a.ws_inference, key), HeldTask.open(b.ws_inference, key)]
    assert [h.finish() for h in again] == ["task-finished", "task-finished"]


def test_dropped_connection_releases_its_session(pair):
    a, b = pair
    key = create_key(a, "drop", "--max-sessions", "1")
    held = HeldTask.open(a.ws_inference, key)
    assert _refused(b.ws_inference, key)["header"]["error_code"] == QUOTA
    held.drop()  # the client vanishes without finish-task
    deadline = time.monotonic() + POLL_BOUND_S
    while True:  # the server notices the closed socket and releases the session
        ws, event = run_task(b.ws_inference, key)
        if event["header"]["event"] == "task-started":
            assert HeldTask(ws, event).finish() == "task-finished"
            break
        ws.close()
        assert event["header"]["error_code"] == QUOTA, event
        assert time.monotonic() < deadline, "the dropped session was never released"
        time.sleep(0.5)


def _get(server: ServerProcess, key: str) -> httpx.Response:
    return httpx.get(f"{server.http}/api/v1/tasks/no-such-task",
                     headers={"Authorization": f"Bearer {key}"}, timeout=60)


def test_requests_per_second_counted_over_both_servers(pair):
    a, b = pair
    key, other = create_key(a, "rps-one", "--rps", "1"), create_key(a, "rps-free")
    # One request on each server per round, rounds further apart than the one-second window:
    # each server alone sees at most one request a second, so only a shared count refuses b's.
    # A round whose two requests are more than a second apart (a very slow machine) refuses
    # nothing, hence several rounds.
    rounds = []
    for _ in range(5):
        time.sleep(1.2)
        first, second = _get(a, key), _get(b, key)
        assert first.status_code != 429, first.text
        rounds.append(second)
        if second.status_code == 429:
            break
    refused = [r for r in rounds if r.status_code == 429]
    assert refused, [r.status_code for r in rounds]
    body = refused[0].json()
    assert body["code"] == RATE and body["request_id"], body
    time.sleep(1.2)  # another key is not counted with it
    assert all(_get(s, other).status_code != 429 for s in pair for _ in range(3))


def test_killed_servers_sessions_expire(pair, pg_url, redis_port):  # noqa: F811
    a, b = pair
    doomed = ServerProcess(config=_config(pg_url, f"redis://127.0.0.1:{redis_port}/0")).start()
    try:
        key = create_key(a, "killed", "--max-sessions", "2")
        wait_keyed(doomed)
        held = [HeldTask.open(doomed.ws_inference, key) for _ in range(2)]
        assert _refused(b.ws_inference, key)["header"]["error_code"] == QUOTA
        time.sleep(2 * LEASE_S)  # sessions longer than the lease: their server renews them
        assert _refused(b.ws_inference, key)["header"]["error_code"] == QUOTA
        doomed.stop(kill=True)  # kill -9: it never releases its sessions
        for h in held:
            h.drop()
        deadline = time.monotonic() + POLL_BOUND_S
        started: list[HeldTask] = []
        while len(started) < 2:  # its leases run out: the key gets both sessions back
            ws, event = run_task((a, b)[len(started)].ws_inference, key)
            if event["header"]["event"] == "task-started":
                started.append(HeldTask(ws, event))
                continue
            ws.close()
            assert event["header"]["error_code"] == QUOTA, event
            assert time.monotonic() < deadline, "a killed server's sessions were never released"
            time.sleep(0.5)
        assert [h.finish() for h in started] == ["task-finished", "task-finished"]
    finally:
        doomed.stop(kill=True)


def test_unreachable_redis_falls_back_to_this_server(pg_url):  # noqa: F811
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    server = ServerProcess(config=_config(pg_url, dead)).start()
    try:
        key = create_key(server, "no-redis", "--max-sessions", "1")
        wait_keyed(server)
        held = HeldTask.open(server.ws_inference, key)
        assert _refused(server.ws_inference, key)["header"]["error_code"] == QUOTA
        assert held.finish() == "task-finished"
        assert HeldTask.open(server.ws_inference, key).finish() == "task-finished"
        assert server.alive()
        assert "Redis is unreachable" in server.log()
    finally:
        server.stop()
