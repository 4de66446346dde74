"""Helpers for the Qwen realtime acceptance tests (`/api-ws/v1/realtime?model=...`).

The official SDK class `dashscope.audio.qwen_omni.OmniRealtimeConversation` is the client wherever
it can produce the input; a raw `websocket-client` connection is used for what it never sends.
Spec: shared/protocol/realtime-websocket.md ("RT"), matrix rows 30-41.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import websocket
from dashscope.audio.qwen_omni import MultiModality, OmniRealtimeCallback, OmniRealtimeConversation
from dashscope.audio.qwen_omni.omni_realtime import TranscriptionParams

from tests.support import clip, error_rate, pcm16

MODEL = "qwen3-asr-flash-realtime"
KEY = "test-key"
STARTED = "input_audio_buffer.speech_started"
STOPPED = "input_audio_buffer.speech_stopped"
COMMITTED = "input_audio_buffer.committed"
ITEM_CREATED = "conversation.item.created"
TEXT = "conversation.item.input_audio_transcription.text"
COMPLETED = "conversation.item.input_audio_transcription.completed"
FINISHED = "session.finished"
# "Text matches" for single transcripts (WER for en, CER for zh): loose but real (garbage, audio at
# the wrong rate or another clip's text score ~1.0). whisper-base hears en_ldc93s1 as "She had a dark
# suit and greasy wash for her all year." (WER 0.36) whatever the path, so that clip gets 0.5. The
# accuracy thresholds (mean WER <= 12 %, mean CER <= 15 %) live in test_accuracy.py.
MATCH_LIMIT = 0.3
MAX_ERROR = {"en_ldc93s1": 0.5}
CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def rt_url(server) -> str:
    return f"ws://127.0.0.1:{server.port}/api-ws/v1/realtime"


# -- audio -----------------------------------------------------------------------------------------
def clip_pcm(clip_id: str, rate: int = 16000) -> bytes:
    return pcm16(str(clip(clip_id)["file"]), rate)


def silence(seconds: float, rate: int = 16000) -> bytes:
    return bytes(int(seconds * rate) * 2)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def assert_matches(clip_id: str, text: str, limit: float | None = None, context: object = "") -> float:
    c = clip(clip_id)
    limit = limit if limit is not None else MAX_ERROR.get(clip_id, MATCH_LIMIT)
    rate = error_rate(c["lang"], c["reference"], text)
    assert rate <= limit, f"{clip_id}: error rate {rate:.2f} > {limit}: {text!r} {context}"
    return rate


# -- SDK client ------------------------------------------------------------------------------------
@dataclass(repr=False)
class Recorder(OmniRealtimeCallback):
    """Records every callback in order (events as dicts) and lets a test wait for one."""

    calls: list[tuple[str, object]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def on_open(self) -> None:
        self._add("open", None)

    def on_close(self, close_status_code, close_msg) -> None:
        self._add("close", (close_status_code, close_msg))

    def on_event(self, message) -> None:
        assert isinstance(message, dict), message
        self._add("event", message)

    def _add(self, kind: str, value: object) -> None:
        with self.cond:
            self.calls.append((kind, value))
            self.cond.notify_all()

    @property
    def events(self) -> list[dict]:
        with self.cond:
            return [v for k, v in self.calls if k == "event"]  # type: ignore[misc]

    def types(self) -> list[str]:
        return [e.get("type") for e in self.events]

    def of(self, etype: str) -> list[dict]:
        return [e for e in self.events if e.get("type") == etype]

    def errors(self) -> list[dict]:
        return self.of("error")

    def wait(self, pred: Callable[[dict], bool], timeout: float = 20.0, start: int = 0) -> dict:
        """The first event (from index `start` of the event list) matching `pred`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                events = [v for k, v in self.calls if k == "event"]
                for ev in events[start:]:
                    if pred(ev):  # type: ignore[arg-type]
                        return ev  # type: ignore[return-value]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching event within {timeout} s; got {self.types()}")
                self.cond.wait(left)

    def wait_type(self, etype: str, timeout: float = 20.0, start: int = 0) -> dict:
        return self.wait(lambda e: e.get("type") == etype, timeout, start)

    def wait_closed(self, timeout: float = 5.0) -> tuple:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for k, v in self.calls:
                    if k == "close":
                        return v  # type: ignore[return-value]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"on_close not called within {timeout} s")
                self.cond.wait(left)

    def __repr__(self) -> str:
        return f"Recorder({self.calls!r})"


class Conversation(OmniRealtimeConversation):
    """The SDK class, remembering the event ids it generates (to match error.event_id)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent_ids: list[str] = []

    def _generate_event_id(self):
        eid = super()._generate_event_id()
        self.sent_ids.append(eid)
        return eid

    @property
    def last_id(self) -> str:
        return self.sent_ids[-1]


def connect(server, api_key: str = KEY, model: str = MODEL) -> tuple[Conversation, Recorder]:
    rec = Recorder()
    conv = Conversation(model=model, callback=rec, url=rt_url(server), api_key=api_key)
    conv.connect()
    return conv, rec


def update(conv: Conversation, vad: bool = True, language: str | None = None, **kwargs) -> str:
    """`update_session` as the seeds call it; returns the session.update's event id."""
    conv.update_session(output_modalities=[MultiModality.TEXT], enable_input_audio_transcription=True,
                        enable_turn_detection=vad,
                        transcription_params=TranscriptionParams(language=language, **kwargs))
    return conv.last_id


def send(conv: Conversation, pcm: bytes, chunk: int = 3200, pace: float | None = None) -> None:
    """Base64 PCM in `chunk`-byte appends; `pace` seconds between them (None = burst)."""
    for piece in chunks(pcm, chunk):
        conv.append_audio(b64(piece))
        if pace:
            time.sleep(pace)


def close_quietly(conv: OmniRealtimeConversation) -> None:
    with contextlib.suppress(Exception):
        conv.close()


def transcripts(events: list[dict]) -> list[str]:
    return [e["transcript"] for e in events if e.get("type") == COMPLETED]


def joined(events: list[dict], lang: str) -> str:
    return ("" if lang in ("zh", "ja") else " ").join(t for t in transcripts(events) if t)


def check_error(ev: dict, event_id: str | None) -> dict:
    """RT §5.10: {type: 'error', error: {type: 'invalid_request_error', code, message, event_id}}."""
    assert ev["type"] == "error", ev
    assert isinstance(ev.get("event_id"), str) and ev["event_id"], ev
    err = ev.get("error")
    assert isinstance(err, dict), ev
    assert err.get("type") == "invalid_request_error", ev
    assert isinstance(err.get("code"), str) and err["code"], ev
    assert isinstance(err.get("message"), str) and err["message"], ev
    assert err.get("event_id") == event_id, (event_id, ev)
    return err


def manual_transcription(conv: Conversation, rec: Recorder, clip_id: str = "en_ldc93s1",
                         timeout: float = 30.0) -> str:
    """Prove a session is usable: manual mode, append a clip, commit, get its transcript."""
    lang = clip(clip_id)["lang"]
    start = len(rec.events)
    upd = update(conv, vad=False, language=lang)
    updated = rec.wait(lambda e: e.get("type") == "session.updated" or (
        e.get("type") == "error" and (e.get("error") or {}).get("event_id") == upd), timeout, start)
    assert updated["type"] == "session.updated", (upd, updated)
    send(conv, clip_pcm(clip_id), chunk=32000)
    conv.commit()
    done = rec.wait_type(COMPLETED, timeout, start)
    assert_matches(clip_id, done["transcript"], context=rec.types()[start:])
    return done["transcript"]


def good_session(server, clip_id: str = "en_ldc93s1") -> None:
    """A fresh SDK session that transcribes a clip: the server still serves."""
    conv, rec = connect(server)
    try:
        rec.wait_type("session.created", 10)
        manual_transcription(conv, rec, clip_id)
        conv.end_session()
        assert rec.types()[-1] == FINISHED, rec.types()
        assert not rec.errors(), rec.errors()
    finally:
        close_quietly(conv)


# -- event-order checks ------------------------------------------------------------------------
def check_created(ev: dict) -> str:
    assert ev["type"] == "session.created", ev
    sess = ev.get("session")
    assert isinstance(sess, dict) and isinstance(sess.get("id"), str) and sess["id"], ev
    return sess["id"]


def check_vad_flow(events: list[dict], n_items: int | None, text_before_stop: bool = False) -> list[str]:
    """RT §6.1 / matrix row 30 for a VAD session; returns the items' transcripts in order.

    session.created (with session.id) first, session.updated next; for each utterance, in this
    order: speech_started, speech_stopped, committed, item.created, completed (string
    `transcript`), with >= 1 transcription.text (string `text` and `stash`) between speech_started
    and completed; every event of an utterance before the next utterance's speech_started;
    session.finished last. `n_items` None: any number of utterances (>= 1), for VAD settings that
    may split a clip at a short pause.

    Where a `.text` falls relative to speech_stopped is not a protocol guarantee: speech_stopped is
    VAD's (the audio's) event, `.text` the decoder's, and a short utterance, or any on a busy
    machine, may be decoded only after it stopped (manual mode's flow has its `.text` after the
    commit, RT §6.2). `text_before_stop` True asks for one before speech_stopped anyway.
    """
    types = [e.get("type") for e in events]
    assert types, events
    check_created(events[0])
    assert types[1] == "session.updated", types
    assert types[-1] == FINISHED, types
    assert types.count(FINISHED) == 1, types
    assert "error" not in types, [e for e in events if e.get("type") == "error"]
    starts = [i for i, t in enumerate(types) if t == STARTED]
    if n_items is None:
        assert starts, types
    else:
        assert len(starts) == n_items, (n_items, types)
    out = []
    for k, s in enumerate(starts):
        item = events[s].get("item_id")
        assert isinstance(item, str) and item, events[s]
        mine = [(i, e) for i, e in enumerate(events) if event_item(e) == item]
        sequence = [e["type"] for _, e in mine if e["type"] != TEXT]
        assert sequence == [STARTED, STOPPED, COMMITTED, ITEM_CREATED, COMPLETED], (item, sequence)
        stop = next(i for i, e in mine if e["type"] == STOPPED)
        done = next(i for i, e in mine if e["type"] == COMPLETED)
        texts = [(i, e) for i, e in mine if e["type"] == TEXT]
        last = stop if text_before_stop else done
        assert any(s < i < last for i, _ in texts), (f"no transcription.text before {events[last]['type']}",
                                                     item, types)
        for i, e in texts:
            assert s < i < done, (item, i, types)
            assert isinstance(e.get("text"), str) and isinstance(e.get("stash"), str), e
            assert e["text"] + e["stash"], e
        if k + 1 < len(starts):  # utterances do not interleave
            assert mine[-1][0] < starts[k + 1], ("item events after the next speech_started", item, types)
        transcript = events[done].get("transcript")
        assert isinstance(transcript, str), events[done]
        out.append(transcript)
    # Every item the server committed gets its transcription, exactly once, after the commit.
    for c, e in enumerate(events):
        if e.get("type") == COMMITTED:
            dones = [i for i, d in enumerate(events) if d.get("type") == COMPLETED
                     and d.get("item_id") == e.get("item_id")]
            assert len(dones) == 1 and dones[0] > c, ("committed item without completed", e, types)
    # Items complete in the order they started.
    done_order = [e["item_id"] for e in events if e.get("type") == COMPLETED]
    assert done_order == [events[s]["item_id"] for s in starts], types
    return out


def event_item(e: dict) -> str | None:
    """The item an event belongs to (conversation.item.created names it as item.id)."""
    if e.get("type") == ITEM_CREATED:
        return (e.get("item") or {}).get("id")
    return e.get("item_id")


def check_spans(events: list[dict], clip_spans_ms: list[tuple[float, float]], slack_ms: float = 500) -> None:
    """speech_started.audio_start_ms / speech_stopped.audio_end_ms are ms of the session's audio
    (RT §5.3): each item lies within its clip's place in the audio sent (give or take the preroll
    and tail), items do not overlap."""
    starts = [e for e in events if e.get("type") == STARTED]
    stops = {e.get("item_id"): e for e in events if e.get("type") == STOPPED}
    assert len(starts) == len(clip_spans_ms), (starts, clip_spans_ms)
    previous_end = 0
    for st, (cs, ce) in zip(starts, clip_spans_ms, strict=True):
        sp = stops[st["item_id"]]
        begin, end = st.get("audio_start_ms"), sp.get("audio_end_ms")
        assert isinstance(begin, int) and isinstance(end, int), (st, sp)
        assert previous_end <= begin < end, (previous_end, st, sp)
        assert cs - slack_ms <= begin and end <= ce + slack_ms, ((begin, end), (cs, ce), clip_spans_ms)
        previous_end = end


def check_manual_flow(events: list[dict], n_items: int = 1) -> list[str]:
    """RT §6.2 / matrix row 31: no VAD events; committed then completed per commit; finished last."""
    types = [e.get("type") for e in events]
    check_created(events[0])
    assert types[1] == "session.updated", types
    assert types[-1] == FINISHED and types.count(FINISHED) == 1, types
    assert STARTED not in types and STOPPED not in types, types
    assert "error" not in types, [e for e in events if e.get("type") == "error"]
    commits = [i for i, t in enumerate(types) if t == COMMITTED]
    assert len(commits) == n_items, types
    out = []
    for c in commits:
        item = events[c].get("item_id")
        assert isinstance(item, str) and item, events[c]
        dones = [i for i, e in enumerate(events) if e.get("type") == COMPLETED and e.get("item_id") == item]
        assert len(dones) == 1 and dones[0] > c, (item, types)
        for i, e in enumerate(events):
            if e.get("type") == TEXT and e.get("item_id") == item:
                assert c < i < dones[0], types
                assert isinstance(e.get("text"), str) and isinstance(e.get("stash"), str), e
        transcript = events[dones[0]].get("transcript")
        assert isinstance(transcript, str), events[dones[0]]
        out.append(transcript)
    assert types.count(COMPLETED) == n_items, types
    return out


# -- raw websocket-client --------------------------------------------------------------------------
def raw_connect(server, model: str | None = MODEL, api_key: str | None = KEY,
                extra_headers: list[str] | None = None, timeout: float = 10.0) -> websocket.WebSocket:
    url = rt_url(server) + (f"?model={model}" if model is not None else "")
    headers = [f"Authorization: Bearer {api_key}"] if api_key is not None else []
    return websocket.create_connection(url, header=headers + (extra_headers or []), timeout=timeout)


def raw_send(ws: websocket.WebSocket, event: dict) -> None:
    ws.send(json.dumps(event))


def raw_recv(ws: websocket.WebSocket, timeout: float = 20.0) -> dict | None:
    """The next event, or None when the server closed the connection."""
    ws.settimeout(timeout)
    opcode, data = ws.recv_data(control_frame=False)
    if opcode == websocket.ABNF.OPCODE_CLOSE:
        return None
    assert opcode == websocket.ABNF.OPCODE_TEXT, (opcode, data[:100])
    ev = json.loads(data)
    assert isinstance(ev, dict) and isinstance(ev.get("type"), str), ev
    return ev


def raw_until(ws: websocket.WebSocket, etype: str, timeout: float = 20.0) -> list[dict]:
    """Events up to and including the first of type `etype`."""
    deadline = time.monotonic() + timeout
    out: list[dict] = []
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {etype} within {timeout} s: {[e['type'] for e in out]}"
        ev = raw_recv(ws, left)
        assert ev is not None, f"closed before {etype}: {[e['type'] for e in out]}"
        out.append(ev)
        if ev["type"] == etype:
            return out


def raw_drain_until_close(ws: websocket.WebSocket, timeout: float = 10.0) -> tuple[list[dict], int | None]:
    """Every event until the server closes; returns (events, close code)."""
    deadline = time.monotonic() + timeout
    out: list[dict] = []
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"server did not close within {timeout} s: {[e['type'] for e in out]}"
        ws.settimeout(left)
        opcode, data = ws.recv_data(control_frame=False)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            return out, code
        assert opcode == websocket.ABNF.OPCODE_TEXT, (opcode, data[:100])
        out.append(json.loads(data))
