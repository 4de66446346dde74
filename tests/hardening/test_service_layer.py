"""The service layer (issue 10 §1): one resolution of model / language / options / capacity for
every protocol, so the same refusal reads the same on every wire, and the import rule that keeps
protocols off server/.

Every wire is driven raw (websocket-client, httpx) against one real `voxscope serve` with a
single session slot, so capacity refusals are reached without decoding anything.
"""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.protocols.inference_helpers import new_task_id, recv_event, run_task
from tests.protocols.inference_helpers import raw_connect as inference_connect
from tests.realtime.helpers import raw_connect as realtime_connect
from tests.realtime.helpers import raw_drain_until_close, raw_send, raw_until
from tests.support import ServerProcess

PACKAGE = Path(__file__).resolve().parents[2] / "voxscope"
TIMEOUT = 60.0  # generous: the machine is shared
FILE_API = "/api/v1/services/audio/asr/transcription"
SYNC_API = "/api/v1/services/aigc/multimodal-generation/generation"
VOCAB_API = "/api/v1/services/audio/asr/customization"
OPENAI_API = "/v1/audio/transcriptions"
AUDIO_URL = "https://example.com/a.wav"  # never fetched: every request here is refused first
UNSUPPORTED_LANGUAGE = re.compile(r"^[a-z_.]+ 'xx' is not supported by [\w.-]+; supported: "
                                  r"[a-z]+(, [a-z]+)+$")


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(env={"VOXSCOPE_IDLE_TIMEOUT_S": "30"},
                        config={"server": {"max_sessions": 1}}).start()
    yield srv
    srv.stop()


# -- wire helpers: each returns (code, message) as its wire reports the refusal ---------------------
def _inference(server, model: str = "fun-asr-realtime", **params) -> tuple[str, str]:
    ws = inference_connect(server.ws_inference, timeout=TIMEOUT)
    try:
        task_id = new_task_id()
        ws.send(run_task(task_id, model=model, **params))
        ev = recv_event(ws)
    finally:
        ws.close()
    assert ev["header"]["event"] == "task-failed", ev
    return ev["header"]["error_code"], ev["header"]["error_message"]


def _post(server, path: str, body: dict, status: int) -> tuple[str, str]:
    resp = httpx.post(server.http + path, json=body, timeout=TIMEOUT,
                      headers={"Authorization": "Bearer k"})
    assert resp.status_code == status, resp.text
    out = resp.json()
    assert out["request_id"], out
    return out["code"], out["message"]


def _file(server, status: int = 400, model: str = "paraformer-v2", **params) -> tuple[str, str]:
    return _post(server, FILE_API, {"model": model, "input": {"file_urls": [AUDIO_URL]},
                                    "parameters": params}, status)


def _sync(server, status: int = 400, model: str = "qwen3-asr-flash",
          language: str | None = None) -> tuple[str, str]:
    body = {"model": model,
            "input": {"messages": [{"role": "user", "content": [{"audio": AUDIO_URL}]}]},
            "parameters": {"asr_options": {"language": language} if language else {}}}
    return _post(server, SYNC_API, body, status)


def _openai(server, status: int, model: str = "whisper-1", **fields) -> dict:
    resp = httpx.post(server.http + OPENAI_API, timeout=TIMEOUT,
                      headers={"Authorization": "Bearer k"},
                      files={"file": ("a.wav", b"RIFF" + b"\0" * 2000, "audio/wav")},
                      data={"model": model, **fields})
    assert resp.status_code == status, resp.text
    return resp.json()["error"]


def _realtime_open(server, model: str = "qwen3-asr-flash-realtime"):
    ws = realtime_connect(server, model=model, timeout=TIMEOUT)
    raw_until(ws, "session.created", TIMEOUT)
    return ws


def _realtime_refused(server, model: str) -> dict:
    ws = realtime_connect(server, model=model, timeout=TIMEOUT)
    try:
        events, _ = raw_drain_until_close(ws, TIMEOUT)
    finally:
        ws.close()
    assert [e["type"] for e in events] == ["error"], events
    return events[0]["error"]


def _slots_free(server) -> None:
    """Wait (polling health, generous) until a closed session has given its slot back."""
    deadline = time.monotonic() + TIMEOUT
    while server.health()["active_tasks"]:
        assert time.monotonic() < deadline, server.health()
        time.sleep(0.1)


# -- the import rule ---------------------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


@pytest.mark.parametrize("package, forbidden", [
    ("protocols", ("voxscope.server",)),
    ("service", ("voxscope.server", "voxscope.protocols")),
])
def test_no_import_back_up(package, forbidden):
    files = sorted((PACKAGE / package).glob("*.py"))
    assert files, f"voxscope/{package}/ is missing"
    bad = {f.name: sorted(m for m in _imports(f) if m.startswith(forbidden)) for f in files}
    assert not {k: v for k, v in bad.items() if v}, bad


# -- one message per refusal, on every wire ----------------------------------------------------------
@pytest.mark.timeout(180)
def test_unknown_model_reads_the_same_everywhere(server):
    expected = "Model not found: no-such-model"
    assert _inference(server, model="no-such-model") == ("ModelNotFound", expected)
    assert _file(server, model="no-such-model") == ("ModelNotFound", expected)
    assert _sync(server, model="no-such-model") == ("ModelNotFound", expected)
    vocab = {"model": "speech-biasing", "input": {"action": "create_vocabulary",
             "target_model": "no-such-model", "vocabulary": [{"text": "voxscope"}]}}
    assert _post(server, VOCAB_API, vocab, 400) == ("ModelNotFound", expected)
    err = _openai(server, 404, model="no-such-model")
    assert (err["code"], err["param"], err["message"]) == ("model_not_found", "model", expected), err
    err = _realtime_refused(server, "no-such-model")
    assert (err["code"], err["message"]) == ("model_not_found", expected), err
    _slots_free(server)


@pytest.mark.timeout(180)
def test_model_of_another_api_reads_the_same_everywhere(server):
    # each API names itself; the sentence is the same
    pattern = re.compile(r"^model [\w.-]+ is not served by the [A-Za-z ]+$")
    for code, message in (_inference(server, model="qwen3-asr-flash"),
                          _file(server, model="fun-asr-realtime"),
                          _sync(server, model="paraformer-v2")):
        assert code == "ModelNotFound" and pattern.match(message), (code, message)
    err = _realtime_refused(server, "fun-asr-realtime")
    assert pattern.match(err["message"]), err
    _slots_free(server)


@pytest.mark.timeout(180)
def test_unsupported_language_reads_the_same_everywhere(server):
    refusals = [
        _inference(server, language_hints=["xx"]),
        _inference(server, model="gummy-realtime-v1", source_language="xx"),
        _file(server, language="xx"),
        _file(server, language_hints=["xx"]),
        _sync(server, language="xx"),
    ]
    for code, message in refusals:
        assert code == "InvalidParameter" and UNSUPPORTED_LANGUAGE.match(message), (code, message)
    err = _openai(server, 400, language="xx")
    assert err["code"] == "invalid_value" and err["param"] == "language", err
    assert UNSUPPORTED_LANGUAGE.match(err["message"]), err
    ws = _realtime_open(server)
    try:
        raw_send(ws, {"type": "session.update", "event_id": "e1",
                      "session": {"input_audio_transcription": {"language": "xx"}}})
        err = raw_until(ws, "error", TIMEOUT)[-1]["error"]
    finally:
        ws.close()
    assert err["code"] == "invalid_value", err
    assert err["param"] == "session.input_audio_transcription.language", err
    assert UNSUPPORTED_LANGUAGE.match(err["message"]), err
    _slots_free(server)


@pytest.mark.timeout(120)
def test_unsupported_options_read_the_same_on_both_apis(server):
    for params in ({"diarization_enabled": True}, {"special_word_filter": "x"},
                   {"vocabulary_id": 123}, {"vocabulary_id": ""}):
        ws_refusal = _inference(server, **params)
        assert ws_refusal == _file(server, **params), params
        assert ws_refusal[0].startswith("InvalidParameter"), ws_refusal


# -- one capacity idiom ------------------------------------------------------------------------------
@pytest.mark.timeout(240)
def test_capacity_refusal_reads_the_same_everywhere(server):
    _slots_free(server)
    holder = _realtime_open(server)  # the server's only slot
    try:
        code, message = _inference(server)
        assert code == "Throttling.Capacity" and "capacity" in message, (code, message)
        assert _sync(server, status=429) == (code, message)
        err = _openai(server, 429)
        assert err["type"] == "rate_limit_error" and err["message"] == message, err
        err = _realtime_refused(server, "qwen3-asr-flash-realtime")
        assert (err["code"], err["message"]) == (code, message), err
    finally:
        holder.close()
    _slots_free(server)
    # the slot came back: a new session opens
    _realtime_open(server).close()
    _slots_free(server)
    assert server.alive(), server.log()

