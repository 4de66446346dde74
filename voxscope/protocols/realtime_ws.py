"""Qwen realtime recognition (`/api-ws/v1/realtime?model=...`): the OpenAI-Realtime-style events.

Wire format: shared/protocol/realtime-websocket.md. One socket is one session. Client events are
JSON text frames with a `type`; audio arrives base64-encoded in `input_audio_buffer.append`.

- Server VAD mode (default): the engine's StreamingRecognizer segments speech; each VAD segment is
  one conversation item: speech_started -> transcription.text (text = locked prefix, stash =
  provisional tail) -> speech_stopped -> committed -> item.created -> transcription.completed.
- Manual mode (`turn_detection: null`): audio accumulates until `input_audio_buffer.commit`
  (at most `MANUAL_MAX_S` seconds, the seed's recommendation, else an error event); the item is
  then transcribed whole.

All outbound events go through one queue. Item events additionally pass an ordering gate: the
events of one item (utterance) all leave before any event of the next item, so a VAD boundary of
item 2 (seen as the audio arrives) waits until item 1's transcription has completed.
A session carries at most `max_task_audio_s` of audio, the inference socket's rule: past it, an
`error` event (`InvalidParameter`, the same message) and a close.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from voxscope.audio import TARGET_RATE as SR
from voxscope.audio import AudioFormatError, StreamDecoder
from voxscope.config import Profile
from voxscope.engine.offline import OfflineOptions
from voxscope.engine.recognizer import RecognizerConfig, SentenceResult, StreamingRecognizer
from voxscope.engine.text import is_cjk
from voxscope.engine.types import Priority
from voxscope.errors import ServiceError
from voxscope.protocols import errors, json_body
from voxscope.protocols.audio_io import decode
from voxscope.protocols.limits import TASK_AUDIO_CODE, task_audio_excess
from voxscope.protocols.ws import accept
from voxscope.service.capacity import Slot
from voxscope.service.requests import REALTIME_KINDS, resolve_language, resolve_profile
from voxscope.service.runtime import Runtime
from voxscope.service.usage import known_model

log = logging.getLogger(__name__)

MANUAL_MAX_S = 60.0
FORMATS = {"pcm": "pcm", "pcm16": "pcm", "opus": "opus"}
RATES = (8000, 16000)
UNSUPPORTED_EVENTS = {"response.create", "response.cancel", "conversation.item.create",
                      "input_image_buffer.append", "conversation.item.truncate",
                      "conversation.item.delete"}


def _eid() -> str:
    return "event_" + uuid.uuid4().hex


class ClientError(ServiceError):
    """A refusal in this wire's own words (`code` is a realtime error code, e.g. invalid_value):
    reported as an error event, the session stays usable."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(code, message, 400, param=param)


# Service refusals as realtime error codes (a ClientError already carries one).
REALTIME_CODES = {errors.MODEL_NOT_FOUND: "model_not_found", errors.INVALID_PARAMETER: "invalid_value",
                  errors.UNSUPPORTED: "invalid_value", errors.BAD_AUDIO: "invalid_audio"}


def wire_code(exc: ServiceError) -> str:
    return exc.code if isinstance(exc, ClientError) else REALTIME_CODES.get(exc.code, exc.code)


@dataclass
class SessionConfig:
    fmt: str = "pcm"
    sample_rate: int = 16000
    language: str | None = None
    corpus: str | None = None
    vad: bool = True
    threshold: float = 0.0
    silence_ms: int = 800
    prefix_padding_ms: int = 300
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self, session_id: str, model: str) -> dict[str, Any]:
        transcription: dict[str, Any] = {}
        if self.language:
            transcription["language"] = self.language
        if self.corpus:
            transcription["corpus"] = {"text": self.corpus}
        return {
            "id": session_id, "object": "realtime.session", "model": model,
            "modalities": ["text"], "input_audio_format": self.fmt, "sample_rate": self.sample_rate,
            "input_audio_transcription": transcription or None,
            "turn_detection": ({"type": "server_vad", "threshold": self.threshold,
                                "prefix_padding_ms": self.prefix_padding_ms,
                                "silence_duration_ms": self.silence_ms} if self.vad else None),
        }


def apply_session_update(cfg: SessionConfig, session: Any, profile: Profile,
                         languages: list[str]) -> SessionConfig:
    """The new configuration, or ServiceError; `cfg` itself is not modified."""
    if not isinstance(session, dict):
        raise ClientError("missing_required_parameter", "session.update needs a 'session' object",
                          "session")
    new = SessionConfig(**{**cfg.__dict__, "extra": dict(cfg.extra)})
    fmt = session.get("input_audio_format")
    rate = session.get("sample_rate")
    audio = session.get("audio")
    if isinstance(audio, dict):  # new-style config takes precedence
        f = ((audio.get("input") or {}).get("format") or {})
        if isinstance(f, dict):
            fmt = f.get("type", fmt)
            rate = f.get("sample_rate", rate)
    if fmt is not None:
        if not isinstance(fmt, str) or fmt.lower() not in FORMATS:
            raise ClientError("invalid_value", f"Invalid input_audio_format {fmt!r}; supported: "
                              "pcm (pcm16), opus", "session.input_audio_format")
        new.fmt = fmt.lower()
    if rate is not None:
        if isinstance(rate, bool) or not isinstance(rate, int) or rate not in RATES:
            raise ClientError("invalid_value", f"Invalid sample_rate {rate!r}; supported: 8000, 16000",
                              "session.sample_rate")
        if not profile.accepts_rate(rate):
            raise ClientError("invalid_value", f"model does not take {rate} Hz", "session.sample_rate")
        new.sample_rate = rate
    if "input_audio_transcription" in session:
        tr = session["input_audio_transcription"]
        if tr is not None and not isinstance(tr, dict):
            raise ClientError("invalid_type", "input_audio_transcription must be an object or null",
                              "session.input_audio_transcription")
        tr = tr or {}
        lang = tr.get("language")
        if lang is not None:
            new.language = resolve_language(lang, languages, profile.name,
                                            param="session.input_audio_transcription.language")
        corpus = tr.get("corpus")
        if isinstance(corpus, dict) and corpus.get("text") is not None:
            if not isinstance(corpus["text"], str):
                raise ClientError("invalid_type", "corpus.text must be a string",
                                  "session.input_audio_transcription.corpus.text")
            new.corpus = corpus["text"][:10000] or None
    if "turn_detection" in session:
        td = session["turn_detection"]
        if td is None:
            new.vad = False
        elif isinstance(td, dict):
            if td.get("type", "server_vad") != "server_vad":
                raise ClientError("invalid_value", f"Unsupported turn_detection.type {td.get('type')!r}; "
                                  "supported: server_vad", "session.turn_detection.type")
            new.vad = True
            thr = td.get("threshold", new.threshold)
            sil = td.get("silence_duration_ms", new.silence_ms)
            pad = td.get("prefix_padding_ms", new.prefix_padding_ms)
            if isinstance(thr, bool) or not isinstance(thr, int | float) or not -1 <= thr <= 1:
                raise ClientError("invalid_value", "turn_detection.threshold must be in [-1, 1]",
                                  "session.turn_detection.threshold")
            if isinstance(sil, bool) or not isinstance(sil, int) or not 200 <= sil <= 6000:
                raise ClientError("invalid_value", "turn_detection.silence_duration_ms must be an "
                                  "integer in [200, 6000]", "session.turn_detection.silence_duration_ms")
            if isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad <= 3000:
                raise ClientError("invalid_value", "turn_detection.prefix_padding_ms must be an "
                                  "integer in [0, 3000]", "session.turn_detection.prefix_padding_ms")
            new.threshold, new.silence_ms, new.prefix_padding_ms = float(thr), sil, pad
        else:
            raise ClientError("invalid_type", "turn_detection must be an object or null",
                              "session.turn_detection")
    return new


class RealtimeConnection:
    def __init__(self, ws: WebSocket, runtime: Runtime) -> None:
        self.ws = ws
        self.rt = runtime
        self.session_id = "sess_" + uuid.uuid4().hex[:24]
        self.model = ws.query_params.get("model") or ""
        self.profile: Profile | None = None
        self.cfg = SessionConfig()
        self.languages: list[str] = []
        self._out: asyncio.Queue[dict | None] = asyncio.Queue()
        self._sender: asyncio.Task | None = None
        self._decoder: StreamDecoder | None = None
        self._decoder_key: tuple[str, int] | None = None
        self._recognizer: StreamingRecognizer | None = None
        self._manual: list[np.ndarray] = []
        self._manual_samples = 0
        self._samples = 0  # session audio received (16 kHz samples): item times count from here
        self._gen = 0  # recognizer generation: a clear starts a new recognizer, segments restart
        self._items: dict[tuple[int, int], str] = {}  # (generation, VAD segment) -> item id
        self._last_item: str | None = None
        # Ordering gate (see module docstring): items not yet completed in start order, events held
        # for items behind the first one, and items whose last event is held.
        self._order: list[str] = []
        self._held: dict[str, list[dict]] = {}
        self._ended: set[str] = set()
        self._open_item: str | None = None  # VAD item whose speech has not stopped yet
        self._transcript: list[str] = []
        self._finishing = False
        self._slot: Slot | None = None
        self._pending: set[asyncio.Task] = set()
        self._failed = False  # ended by a fatal error: counted in usage failures

    # -- lifecycle -------------------------------------------------------------------------------
    async def run(self) -> None:
        self.principal = await accept(self.rt, self.ws)
        if self.principal is None:
            return
        self._sender = asyncio.create_task(self._send_loop())
        try:
            if await self._open():
                await self._loop()
        except WebSocketDisconnect:
            pass
        finally:
            self.rt.metrics.connections.dec()
            self._release()
            await self._stop_sender()

    async def _open(self) -> bool:
        try:
            profile = resolve_profile(self.rt.settings, self.model, REALTIME_KINDS)
            await self.rt.usage.admit_async(self.principal)  # daily audio hours
            self._slot = self.rt.capacity.slot(self.principal, stream=True)
        except ServiceError as exc:
            self.rt.usage.record(self.principal, known_model(self.rt.settings, self.model),
                                 failures=1)
            await self._fatal(wire_code(exc), exc.message)
            return False
        self.profile = profile
        self.rt.metrics.session_started("realtime", profile.name)
        self.languages = self.rt.engine.languages(profile)
        self.cfg.sample_rate = 16000 if profile.accepts_rate(16000) else RATES[0]
        self.cfg.fmt = "pcm16"
        self._emit({"type": "session.created",
                    "session": self.cfg.describe(self.session_id, self.model)})
        return True

    def _release(self) -> None:
        for task in self._pending:
            task.cancel()
        if self._recognizer is not None:
            self._recognizer.close()
            self._recognizer = None
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None
        if self._slot is not None:
            slot, self._slot = self._slot, None
            slot.release()
            self.rt.metrics.session_ended("realtime", self.profile.name if self.profile else "")
            # One usage record per session: the audio it received (whole seconds, as the
            # inference socket's usage.duration counts them).
            self.rt.usage.record(self.principal, self.profile.name if self.profile else "",
                                 math.ceil(self._samples / SR), failures=int(self._failed))

    async def _loop(self) -> None:
        idle = self.rt.settings.idle_timeout_s
        while True:
            try:
                msg = await asyncio.wait_for(self.ws.receive(), idle)
            except TimeoutError:
                if self._pending:  # the server is still transcribing a commit: the client waits on us
                    continue
                await self._fatal("session_timeout", f"no client event for {idle:.0f} s")
                return
            if msg["type"] == "websocket.disconnect":
                return
            text = msg.get("text")
            if text is None:
                self._error("invalid_request_error", "binary_not_supported",
                            "binary frames are not accepted; send JSON events with base64 audio")
                continue
            try:
                event = json_body.loads(text)
                if not isinstance(event, dict):
                    raise ValueError
            except ValueError:
                self._error("invalid_request_error", "invalid_json",
                            "the event is not a JSON object")
                continue
            done = await self._dispatch(event)
            if done:
                return

    # -- events ------------------------------------------------------------------------------------
    async def _dispatch(self, event: dict) -> bool:
        etype = event.get("type")
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        if self._finishing:
            self._error("invalid_request_error", "session_finishing",
                        f"event {etype!r} after session.finish", event_id)
            return False
        try:
            if etype == "session.update":
                self._session_update(event)
            elif etype == "input_audio_buffer.append":
                await self._append(event)
                excess = task_audio_excess(self._samples / SR, self.rt.settings)
                if excess is not None:  # the inference socket's rule: the session ends here
                    await self._fatal(TASK_AUDIO_CODE, excess)
                    return True
            elif etype == "input_audio_buffer.commit":
                self._commit(event_id)
            elif etype == "input_audio_buffer.clear":
                await self._clear()
            elif etype == "session.finish":
                await self._finish()
                return True
            elif etype in UNSUPPORTED_EVENTS:
                raise ClientError("unsupported_event",
                                  f"{etype} is not supported by the speech recognition model "
                                  f"{self.model}")
            elif not isinstance(etype, str):
                raise ClientError("missing_required_parameter", "the event has no 'type'", "type")
            else:
                raise ClientError("invalid_event_type", f"unknown event type {etype!r}", "type")
        except AudioFormatError as exc:
            self._error("invalid_request_error", "invalid_audio", exc.message, event_id, "audio")
            self._reset_decoder()
        except ServiceError as exc:
            self._error("invalid_request_error", wire_code(exc), exc.message, event_id, exc.param)
        return False

    def _session_update(self, event: dict) -> None:
        assert self.profile is not None
        new = apply_session_update(self.cfg, event.get("session"), self.profile, self.languages)
        if self._recognizer is not None and (new.vad != self.cfg.vad):
            raise ClientError("invalid_value", "turn_detection cannot change while audio is "
                              "being recognised; finish the session first", "session.turn_detection")
        self.cfg = new
        if self._recognizer is not None:
            rc = self._recognizer.config
            rc.language = new.language
            rc.prompt = new.corpus
        self._emit({"type": "session.updated",
                    "session": self.cfg.describe(self.session_id, self.model)})

    def _ensure_decoder(self) -> StreamDecoder:
        key = (FORMATS[self.cfg.fmt], self.cfg.sample_rate)
        if self._decoder is None or self._decoder_key != key:
            if self._decoder is not None:
                self._decoder.close()
            self._decoder = StreamDecoder(key[0], key[1])
            self._decoder_key = key
        return self._decoder

    def _reset_decoder(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
        self._decoder = None

    async def _append(self, event: dict) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise ClientError("missing_required_parameter",
                              "input_audio_buffer.append needs 'audio' (base64 string)", "audio")
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ClientError("invalid_value", "'audio' is not valid base64", "audio") from None
        if not data:
            return
        decoder = self._ensure_decoder()
        pcm = await decode(decoder, decoder.feed, data)
        self._take_audio(pcm)

    def _take_audio(self, pcm: np.ndarray) -> None:
        if not pcm.size:
            return
        before = self._samples
        self._samples += pcm.size
        self.rt.metrics.audio_seconds.inc(pcm.size / SR)
        if self.cfg.vad:
            self._vad_recognizer(int(before * 1000 / SR)).feed(pcm)
            return
        room = int(MANUAL_MAX_S * SR) - self._manual_samples
        if pcm.size > room:
            kept = pcm[:max(room, 0)]
            if kept.size:
                self._manual.append(kept)
                self._manual_samples += kept.size
            raise ClientError("input_audio_buffer_too_long",
                              f"more than {MANUAL_MAX_S:.0f} s of audio without commit; audio "
                              "beyond that was dropped: commit more often", "audio")
        self._manual.append(pcm)
        self._manual_samples += pcm.size

    def _vad_recognizer(self, offset_ms: int = 0) -> StreamingRecognizer:
        if self._recognizer is None:
            self._gen += 1
            gen = self._gen
            assert self.profile is not None
            cfg = RecognizerConfig(
                language=self.cfg.language, allowed_languages=tuple(self.languages),
                max_sentence_silence_ms=self.cfg.silence_ms,
                vad_threshold=min(max(0.5 + 0.4 * self.cfg.threshold, 0.1), 0.9),
                preroll_ms=self.cfg.prefix_padding_ms, prompt=self.cfg.corpus,
                report_empty_finals=True, **self.rt.settings.stream_options())
            async def on_result(r: SentenceResult, gen: int = gen) -> None:
                await self._on_result(r, gen)

            def on_boundary(kind: str, segment: int, ms: int, gen: int = gen,
                            offset_ms: int = offset_ms) -> None:
                self._on_boundary(kind, segment, ms + offset_ms, gen)

            self._recognizer = self.rt.engine.recognizer(self.profile, cfg, on_result, on_boundary)
        return self._recognizer

    def _on_boundary(self, kind: str, segment: int, ms: int, gen: int) -> None:
        key = (gen, segment)
        if kind == "start":
            item = "item_" + uuid.uuid4().hex[:24]
            self._items[key] = item
            self._order.append(item)
            self._open_item = item
            self._emit_item(item, {"type": "input_audio_buffer.speech_started",
                                   "audio_start_ms": ms, "item_id": item})
        elif kind == "end":
            item = self._items.get(key, "")
            if self._open_item == item:
                self._open_item = None
            self._emit_item(item, {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms,
                                   "item_id": item})
            self._committed(item)

    def _committed(self, item: str) -> None:
        self._emit_item(item, {"type": "input_audio_buffer.committed",
                               "previous_item_id": self._last_item, "item_id": item})
        self._emit_item(item, {"type": "conversation.item.created",
                               "previous_item_id": self._last_item,
                               "item": {"id": item, "object": "realtime.item", "type": "message",
                                        "status": "completed", "role": "user",
                                        "content": [{"type": "input_audio", "transcript": None}]}})
        self._last_item = item

    async def _on_result(self, r: SentenceResult, gen: int) -> None:
        item = self._items.get((gen, r.segment), "")
        if not r.final:
            stable = r.text[: r.stable_chars]
            self._emit_item(item, {"type": "conversation.item.input_audio_transcription.text",
                                   "item_id": item, "content_index": 0, "text": stable,
                                   "stash": r.text[r.stable_chars:], "language": r.language})
            return
        self._items.pop((gen, r.segment), None)
        self._completed(item, r.text, r.language)

    def _completed(self, item: str, transcript: str, language: str | None) -> None:
        # No `emotion`: no local model provides one (see README).
        self._emit_item(item, {"type": "conversation.item.input_audio_transcription.completed",
                               "item_id": item, "content_index": 0, "transcript": transcript,
                               "language": language or self.cfg.language}, last=True)

    def _commit(self, event_id: str | None) -> None:
        if self.cfg.vad:
            # Server VAD commits by itself; an explicit commit is accepted and has nothing to do.
            return
        if not self._manual_samples:
            raise ClientError("input_audio_buffer_commit_empty",
                              "cannot commit an empty audio buffer", "input_audio_buffer")
        audio = np.concatenate(self._manual)
        self._manual, self._manual_samples = [], 0
        item = "item_" + uuid.uuid4().hex[:24]
        self._order.append(item)
        self._committed(item)
        task = asyncio.create_task(self._transcribe_item(item, audio))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _transcribe_item(self, item: str, audio: np.ndarray) -> None:
        assert self.profile is not None
        opts = OfflineOptions(language=self.cfg.language, allowed_languages=tuple(self.languages),
                              prompt=self.cfg.corpus)
        try:
            # A committed item is a realtime result the user waits for: realtime-final priority.
            sentences = await asyncio.to_thread(self.rt.engine.transcribe, self.profile, audio, opts,
                                                Priority.FINAL)
        except Exception as exc:  # the engine failed on this item: report it, keep the session
            log.exception("manual item transcription failed")
            self._emit_item(item, {"type": "conversation.item.input_audio_transcription.failed",
                                   "item_id": item, "content_index": 0,
                                   "error": {"type": "server_error", "code": errors.INTERNAL_ERROR,
                                             "message": str(exc)}}, last=True)
            return
        lang = sentences[0].language if sentences else self.cfg.language
        joiner = "" if is_cjk(lang) else " "
        self._completed(item, joiner.join(s.text for s in sentences), lang)

    async def _clear(self) -> None:
        self._manual, self._manual_samples = [], 0
        if self._recognizer is not None:
            # The uncommitted speech is dropped; items already committed still complete.
            old, self._recognizer = self._recognizer, None
            if self._open_item is not None:
                # Its speech is dropped unrecognised: it will never complete, don't wait for it.
                self._drop_item(self._open_item)
                self._open_item = None
            task = asyncio.create_task(old.abandon())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        self._reset_decoder()
        self._emit({"type": "input_audio_buffer.cleared"})

    async def _finish(self) -> None:
        self._finishing = True
        if self._decoder is not None:
            try:
                tail = await decode(self._decoder, self._decoder.flush)
                self._take_audio(tail)
            except ServiceError as exc:
                self._error("invalid_request_error", "invalid_audio", exc.message)
        if self._recognizer is not None:
            try:
                await self._recognizer.finish()
            except Exception as exc:  # noqa: BLE001 - reported to the client
                self._error("server_error", errors.INTERNAL_ERROR, f"recognition failed: {exc}")
        elif self._manual_samples:
            # Audio appended but never committed is transcribed too rather than lost.
            self._commit(None)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        self._flush_all_items()
        self._emit({"type": "session.finished", "transcript": "".join(self._transcript)})
        await self._close(1000, "session finished")

    # -- output ------------------------------------------------------------------------------------
    def _emit(self, event: dict) -> None:
        self._out.put_nowait({"event_id": _eid(), **event})

    def _emit_item(self, item: str, event: dict, last: bool = False) -> None:
        """Send an item's event once every earlier item has completed; `last`: its final event."""
        if item not in self._order:  # not tracked (already completed, or no item): nothing to wait on
            self._send_item_event(event)
            return
        self._held.setdefault(item, []).append(event)
        if last:
            self._ended.add(item)
        self._flush_items()

    def _flush_items(self) -> None:
        while self._order:
            head = self._order[0]
            for event in self._held.pop(head, []):
                self._send_item_event(event)
            if head not in self._ended:
                return
            self._ended.discard(head)
            self._order.pop(0)

    def _send_item_event(self, event: dict) -> None:
        transcript = event.get("transcript")
        if event["type"] == "conversation.item.input_audio_transcription.completed" and transcript:
            # The session's transcript (session.finished) in the order items are delivered; the
            # joining space belongs here only, an item's own transcript starts with its first word.
            sep = "" if not self._transcript or is_cjk(event.get("language")) else " "
            self._transcript.append(sep + transcript)
        self._emit(event)

    def _drop_item(self, item: str) -> None:
        """An item that will never complete (cleared): unseen events of it are discarded."""
        if item not in self._order:
            return
        if self._order[0] != item:
            self._held.pop(item, None)
        self._ended.add(item)
        self._flush_items()

    def _flush_all_items(self) -> None:
        """Session end: whatever is still held (an item whose decode failed) goes out in order."""
        self._ended.update(self._order)
        self._flush_items()

    def _error(self, etype: str, code: str, message: str, event_id: str | None = None,
               param: str | None = None) -> None:
        log.info("realtime session %s: %s %s", self.session_id, code, message)
        self.rt.metrics.refused("realtime", code)
        self._emit({"type": "error", "error": {"type": etype, "code": code, "message": message,
                                               "param": param, "event_id": event_id}})

    async def _fatal(self, code: str, message: str) -> None:
        busy = code.startswith("Throttling")  # the server's or the key's limit: retry later
        self._failed = True
        self._error("server_error" if busy else "invalid_request_error", code, message)
        await self._close(1013 if busy else 1000, code[:100])

    async def shutdown(self, code: str, message: str) -> None:
        """Server shutdown: an `error` event (server_error ends a session), then a clean close."""
        self._failed = True
        self._error("server_error", code, message)
        await self._close(1001, "server shutting down")

    async def _stop_sender(self) -> None:
        """Let every queued event go out, then end the sender."""
        await self._out.put(None)
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._sender, 10)

    async def _close(self, code: int, reason: str) -> None:
        await self._stop_sender()
        with contextlib.suppress(Exception):
            await self.ws.close(code, reason)

    async def _send_loop(self) -> None:
        while True:
            event = await self._out.get()
            if event is None:
                return
            if self.ws.application_state != WebSocketState.CONNECTED:
                continue
            try:
                await self.ws.send_text(json.dumps(event, ensure_ascii=False))
            except Exception:  # client gone: drain silently
                continue

