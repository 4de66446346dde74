"""Usage metering (issue 10 §5) and the daily audio hours limit (§4), against one real server with
keys made by `voxscope keys create`: the official SDKs' own `usage` fields agree with
`GET /api/v1/usage` and `voxscope usage`; a key sees only its own rows; failures are counted; a
key over its daily audio gets Throttling.AllocationQuota on every wire while its running session
and other keys go on. Assertions are on counts and codes, never on timings."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import websocket

from tests.conftest import FAST_ENV
from tests.files.helpers import AudioHost
from tests.operations.helpers import CLI_TIMEOUT_S, create_key, key_id, wait_keyed
from tests.protocols.inference_helpers import finish_task, new_task_id, recv_event, run_task
from tests.realtime.helpers import FINISHED, close_quietly, connect, send, update
from tests.support import ServerProcess, clip, clip_pcm, sdk_at, silence_pcm, wav_bytes

QUOTA = "Throttling.AllocationQuota"
TIMEOUT = 120.0  # generous: the machine is shared
CLIP = "en_ldc93s1"  # 2.9 s of speech: cheap to recognize
REALTIME = "paraformer-realtime-v2"
QWEN_RT = "qwen3-asr-flash-realtime"
FILE_MODEL = "paraformer-v2"
SYNC_MODEL = "qwen3-asr-flash"
USAGE = "/api/v1/usage"


@pytest.fixture(scope="module")
def host():
    h = AudioHost().start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def srv():
    server = ServerProcess(env=FAST_ENV, config={"server": {"max_sessions": 6,
                                                            "fetch_allow_private": True}})
    server.start()
    create_key(server, "bootstrap")
    wait_keyed(server)
    yield server
    server.stop()


def _usage(srv, key: str, **params) -> list[dict]:
    resp = httpx.get(srv.http + USAGE, params=params, timeout=TIMEOUT,
                     headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["request_id"], body
    return body["output"]["usage"]


def _by_model(rows: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in rows:
        assert r["model"] not in out, rows  # one row per model and day (today only here)
        out[r["model"]] = r
    return out


def _usage_cli(srv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "voxscope.cli", "usage", *args, "--data-dir",
         str(srv.workdir / "data"), "--config", str(srv.workdir / "config.yaml")],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)


# -- the four recognitions, each through its official client --------------------------------------
def _recognition(srv, key: str, tmp: Path) -> int:
    """Recognition.call on a real clip; returns the seconds task-finished's usage reports."""
    from dashscope.audio.asr import Recognition

    path = tmp / "clip.pcm"
    path.write_bytes(clip_pcm(CLIP))
    with sdk_at(srv, key):
        res = Recognition(model=REALTIME, format="pcm", sample_rate=16000, callback=None).call(
            str(path))
    assert res.status_code == 200, res
    return int(res.usage["duration"])


def _file_task(srv, key: str, host: AudioHost) -> int:
    """A Transcription file task to its end; returns its `usage.duration`."""
    from dashscope.audio.asr import Transcription

    with sdk_at(srv, key):
        task = Transcription.async_call(model=FILE_MODEL, file_urls=[host.clip_url(CLIP)])
        assert task.status_code == 200, task
        done = Transcription.wait(task=task.output.task_id)
    assert done.status_code == 200 and done.output.task_status == "SUCCEEDED", done
    return int(done.usage["duration"])


def _openai(srv, key: str) -> int:
    """openai's audio.transcriptions.create; returns its `usage.seconds`."""
    import openai

    client = openai.OpenAI(api_key=key, base_url=srv.http + "/v1", timeout=TIMEOUT, max_retries=0)
    result = client.audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", wav_bytes(clip_pcm(CLIP)), "audio/wav"))
    assert result.text, result
    return int(result.usage.seconds)


def _qwen_realtime(srv, key: str) -> int:
    """An OmniRealtimeConversation session to session.finished; returns its audio seconds (the
    realtime wire reports no usage: the session is metered by the audio it received)."""
    pcm = clip_pcm(CLIP) + silence_pcm(1.0)
    conv, rec = connect(srv, api_key=key, model=QWEN_RT)
    try:
        update(conv, language="en")
        send(conv, pcm)
        conv.end_session()
        assert rec.types()[-1] == FINISHED, rec.types()
    finally:
        close_quietly(conv)
    return math.ceil(len(pcm) / 2 / 16000)


def test_usage_agrees_with_the_results_usage_fields(srv, host, tmp_path):
    key = create_key(srv, "metered")
    expected = {REALTIME: _recognition(srv, key, tmp_path), FILE_MODEL: _file_task(srv, key, host),
                "whisper-1": _openai(srv, key), QWEN_RT: _qwen_realtime(srv, key)}
    assert expected[REALTIME] == math.ceil(clip(CLIP)["duration_s"]), expected

    rows = _by_model(_usage(srv, key))
    # whisper-1 is an alias: usage is kept under the profile it resolves to
    openai_model = next(m for m in rows if m not in (REALTIME, FILE_MODEL, QWEN_RT))
    assert openai_model, rows
    kid = key_id(srv, "metered")
    assert set(rows) == {REALTIME, FILE_MODEL, QWEN_RT, openai_model}, rows
    for model, seconds in expected.items():
        row = rows[openai_model if model == "whisper-1" else model]
        assert row["key_id"] == kid, row
        assert row["audio_seconds"] == seconds, (model, row, expected)
        assert row["failures"] == 0, row
    assert rows[FILE_MODEL]["tasks"] == 1 and rows[FILE_MODEL]["requests"] == 1, rows
    for model in (REALTIME, QWEN_RT, openai_model):
        assert rows[model]["requests"] == 1 and rows[model]["tasks"] == 0, rows

    # the operator's view from the database agrees, row for row
    out = _usage_cli(srv, "--key", kid, "--format", "json")
    assert out.returncode == 0, out.stderr
    assert _by_model(json.loads(out.stdout)["usage"]) == rows, out.stdout
    csv_out = _usage_cli(srv, "--key", kid, "--format", "csv")
    assert csv_out.returncode == 0, csv_out.stderr
    assert csv_out.stdout.splitlines()[0] == \
        "key_id,model,date,audio_seconds,requests,tasks,failures", csv_out.stdout
    assert len(csv_out.stdout.splitlines()) == 1 + len(rows), csv_out.stdout
    # keys list shows today's usage of the key (never the key)
    listed = subprocess.run(
        [sys.executable, "-m", "voxscope.cli", "keys", "list", "--json", "--data-dir",
         str(srv.workdir / "data"), "--config", str(srv.workdir / "config.yaml")],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=True)
    mine = next(json.loads(line) for line in listed.stdout.splitlines()
                if json.loads(line)["id"] == kid)
    assert mine["today"]["audio_seconds"] == sum(expected.values()), mine
    assert mine["today"]["requests"] == 4 and mine["today"]["tasks"] == 1, mine
    assert key not in listed.stdout


def _sync_streamed(srv, key: str, host: AudioHost) -> int:
    """MultiModalConversation.call streamed (SSE); returns the last event's `usage.seconds`."""
    import dashscope

    with sdk_at(srv, key):
        events = list(dashscope.MultiModalConversation.call(
            model=SYNC_MODEL, stream=True, incremental_output=True,
            messages=[{"role": "user", "content": [{"audio": host.clip_url(CLIP)}]}]))
    assert events and all(e.status_code == 200 for e in events), events
    return int(events[-1].usage["seconds"])


def test_a_key_sees_only_its_own_rows(srv, host):
    mine, other = create_key(srv, "own-a"), create_key(srv, "own-b")
    seconds = _sync_streamed(srv, mine, host)
    assert [r["key_id"] for r in _usage(srv, other)] == []
    rows = _usage(srv, mine)
    assert [(r["key_id"], r["model"], r["audio_seconds"], r["requests"]) for r in rows] == \
        [(key_id(srv, "own-a"), SYNC_MODEL, seconds, 1)], rows
    # a temporary token of the key sees its key's rows
    token = httpx.post(srv.http + "/api/v1/tokens", timeout=TIMEOUT,
                       headers={"Authorization": f"Bearer {mine}"}).json()["token"]
    assert _usage(srv, token) == rows
    # a day range without today is empty; a malformed day is a clear 400
    assert _usage(srv, mine, until="2000-01-01") == []
    resp = httpx.get(srv.http + USAGE, params={"since": "yesterday"}, timeout=TIMEOUT,
                     headers={"Authorization": f"Bearer {mine}"})
    assert resp.status_code == 400 and resp.json()["code"] == "InvalidParameter", resp.text
    assert httpx.get(srv.http + USAGE, timeout=TIMEOUT).status_code == 401


def test_failures_are_counted(srv):
    key = create_key(srv, "failing")
    # a run-task the server refuses (unsupported audio format): task-failed
    ws = websocket.create_connection(srv.ws_inference, timeout=TIMEOUT,
                                     header=[f"Authorization: Bearer {key}"])
    try:
        ws.send(run_task(new_task_id(), model=REALTIME, fmt="nonsense"))
        ev = recv_event(ws)
    finally:
        ws.close()
    assert ev["header"]["event"] == "task-failed", ev
    # an OpenAI call with a file that is no audio: 400
    resp = httpx.post(srv.http + "/v1/audio/transcriptions", timeout=TIMEOUT,
                      headers={"Authorization": f"Bearer {key}"},
                      data={"model": "whisper-1"}, files={"file": ("a.wav", b"not audio")})
    assert resp.status_code == 400, resp.text
    rows = _by_model(_usage(srv, key))
    assert rows[REALTIME]["failures"] == 1 and rows[REALTIME]["audio_seconds"] == 0, rows
    openai_row = next(r for m, r in rows.items() if m != REALTIME)
    assert openai_row["failures"] == 1 and openai_row["requests"] == 1, rows


# -- daily audio hours ---------------------------------------------------------------------------
def _recognize_silence(srv, key: str, seconds: float) -> dict:
    """A raw inference task over `seconds` of silence (metered, nothing to decode): its end."""
    ws = websocket.create_connection(srv.ws_inference, timeout=TIMEOUT,
                                     header=[f"Authorization: Bearer {key}"])
    try:
        task_id = new_task_id()
        ws.send(run_task(task_id, model=REALTIME))
        ev = recv_event(ws)
        if ev["header"]["event"] != "task-started":
            return ev
        ws.send_binary(silence_pcm(seconds))
        ws.send(finish_task(task_id))
        while ev["header"]["event"] not in ("task-finished", "task-failed"):
            ev = recv_event(ws)
        return ev
    finally:
        ws.close()


class _Held:
    """A started inference task kept open with silence until finished."""

    def __init__(self, srv, key: str) -> None:
        self.ws = websocket.create_connection(srv.ws_inference, timeout=TIMEOUT,
                                              header=[f"Authorization: Bearer {key}"])
        self.task_id = new_task_id()
        self.ws.send(run_task(self.task_id, model=REALTIME))
        assert recv_event(self.ws)["header"]["event"] == "task-started"
        self._stop = threading.Event()
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.ws.send_binary(silence_pcm(0.1))
            except Exception:  # noqa: BLE001 - the socket closed; finish() reports it
                return

    def finish(self) -> dict:
        self._stop.set()
        self._feeder.join()
        self.ws.send(finish_task(self.task_id))
        try:
            while True:
                ev = recv_event(self.ws)
                if ev["header"]["event"] in ("task-finished", "task-failed"):
                    return ev
        finally:
            self.ws.close()


def test_daily_audio_hours_refuse_new_work_on_every_wire(srv, host):
    limited = create_key(srv, "daily", "--daily-audio-hours", "0.001")  # 3.6 s a day
    other = create_key(srv, "unlimited")
    running = _Held(srv, limited)  # started under the limit: never cut by it
    try:
        first = _recognize_silence(srv, limited, seconds=5.0)
        assert first["header"]["event"] == "task-finished", first
        assert first["payload"]["usage"]["duration"] == 5, first

        # inference WebSocket: task-failed with the throttling code
        refused = _recognize_silence(srv, limited, seconds=1.0)
        assert refused["header"]["event"] == "task-failed", refused
        assert refused["header"]["error_code"] == QUOTA, refused
        # DashScope REST (sync and file tasks): 429 in DashScope's envelope
        auth = {"Authorization": f"Bearer {limited}"}
        sync = httpx.post(srv.http + "/api/v1/services/aigc/multimodal-generation/generation",
                          headers=auth, timeout=TIMEOUT, json={
                              "model": SYNC_MODEL, "input": {"messages": [{"role": "user", "content": [
                                  {"audio": host.clip_url(CLIP)}]}]}})
        assert sync.status_code == 429 and sync.json()["code"] == QUOTA, sync.text
        files = httpx.post(srv.http + "/api/v1/services/audio/asr/transcription", headers=auth,
                           timeout=TIMEOUT, json={"model": FILE_MODEL,
                                                  "input": {"file_urls": [host.clip_url(CLIP)]}})
        assert files.status_code == 429 and files.json()["code"] == QUOTA, files.text
        # OpenAI's 429 shape on /v1
        oa = httpx.post(srv.http + "/v1/audio/transcriptions", headers=auth, timeout=TIMEOUT,
                        data={"model": "whisper-1"},
                        files={"file": ("a.wav", wav_bytes(silence_pcm(1.0)), "audio/wav")})
        assert oa.status_code == 429, oa.text
        assert oa.json()["error"]["type"] == "rate_limit_error", oa.text
        # Qwen realtime: an error event with the code, then the close
        rt = websocket.create_connection(f"{srv.ws_realtime}?model={QWEN_RT}", timeout=TIMEOUT,
                                         header=[f"Authorization: Bearer {limited}"])
        try:
            err = json.loads(rt.recv())
        finally:
            rt.close()
        assert err["type"] == "error" and err["error"]["code"] == QUOTA, err

        # another key is unaffected
        assert _recognize_silence(srv, other, seconds=1.0)["header"]["event"] == "task-finished"
    finally:
        ended = running.finish()
    # the session running before the limit was reached ends normally
    assert ended["header"]["event"] == "task-finished", ended

    rows = _by_model(_usage(srv, limited))
    assert rows[REALTIME]["audio_seconds"] >= 5, rows
    assert rows[REALTIME]["failures"] == 1, rows  # the refused run-task
