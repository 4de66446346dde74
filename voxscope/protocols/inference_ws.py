"""DashScope inference WebSocket (`/api-ws/v1/inference`): run-task / continue-task / finish-task.

Wire format: shared/protocol/inference-websocket.md. This module translates frames into calls on
an audio StreamDecoder and an engine StreamingRecognizer, and recognizer results into
`result-generated` events. It knows nothing about the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from voxscope.audio import SUPPORTED_FORMATS, TARGET_RATE, AudioFormatError, StreamDecoder
from voxscope.config import Profile
from voxscope.engine.hotwords import hotwords_from
from voxscope.engine.recognizer import RecognizerConfig, SentenceResult, StreamingRecognizer
from voxscope.errors import ServiceError
from voxscope.protocols import errors, json_body
from voxscope.protocols.audio_io import decode
from voxscope.protocols.errors import ProtocolError
from voxscope.protocols.gummy import CHAT_MAX_AUDIO_S, gummy_config, gummy_output
from voxscope.protocols.limits import TASK_AUDIO_CODE, task_audio_excess
from voxscope.protocols.params import opt_bool, opt_number
from voxscope.protocols.ws import accept
from voxscope.service.auth import Principal
from voxscope.service.capacity import Slot
from voxscope.service.drain import SHUTDOWN_CODE, SHUTDOWN_MESSAGE
from voxscope.service.requests import (
    INFERENCE_KINDS,
    check_vocabulary_id,
    hotwords_for,
    refuse_unsupported,
    resolve_language,
    resolve_profile,
)
from voxscope.service.runtime import Runtime
from voxscope.service.usage import known_model

log = logging.getLogger(__name__)


@dataclass
class TaskRequest:
    task_id: str
    profile: Profile
    fmt: str
    sample_rate: int
    heartbeat: bool
    recognizer: RecognizerConfig
    # Gummy models: which parts of the result to send
    transcription: bool = True
    translation: bool = False
    vocabulary_id: str | None = None  # checked; its words are loaded for the caller at start


def parse_run_task(msg: dict[str, Any], runtime: Runtime) -> TaskRequest:
    header = msg.get("header") or {}
    payload = msg.get("payload")
    task_id = header.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise ProtocolError(errors.INVALID_PARAMETER, "header.task_id must be a non-empty string")
    if not isinstance(payload, dict):
        raise ProtocolError(errors.INVALID_PARAMETER, "run-task needs a payload object")
    model = payload.get("model")
    profile = resolve_profile(runtime.settings, model, INFERENCE_KINDS, field="payload.model")
    params = payload.get("parameters") or {}
    if not isinstance(params, dict):
        raise ProtocolError(errors.INVALID_PARAMETER, "payload.parameters must be an object")

    fmt = params.get("format")
    if not isinstance(fmt, str) or fmt.lower() not in SUPPORTED_FORMATS:
        raise ProtocolError(errors.INVALID_PARAMETER,
                            f"unsupported audio format {fmt!r}; supported: "
                            f"{', '.join(SUPPORTED_FORMATS)}")
    rate = params.get("sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise ProtocolError(errors.INVALID_PARAMETER, "parameter 'sample_rate' must be a positive integer")
    if not profile.accepts_rate(rate):
        raise ProtocolError(
            errors.INVALID_PARAMETER,
            f"model {model} does not support sample rate {rate} Hz; it takes "
            f"{', '.join(str(r) for r in profile.sample_rates)} Hz")

    languages = runtime.engine.languages(profile)
    refuse_unsupported(params, payload.get("resources"))
    vocabulary_id = check_vocabulary_id(profile, params.get("vocabulary_id"))
    if profile.kind != "recognition":
        cfg, transcription, translation = gummy_config(profile, params, languages,
                                                       runtime.settings.stream_options())
        return TaskRequest(task_id, profile, fmt.lower(), rate, opt_bool(params, "heartbeat", False),
                           cfg, transcription, translation, vocabulary_id)
    hints = params.get("language_hints")
    language = None
    if hints is not None:
        if not isinstance(hints, list) or not all(isinstance(h, str) for h in hints):
            raise ProtocolError(errors.INVALID_PARAMETER, "language_hints must be a list of strings")
        if hints:
            language = resolve_language(hints[0], languages, profile.name, field="language_hints")

    silence = opt_number(params, "max_sentence_silence", 200, 6000)
    noise = opt_number(params, "speech_noise_threshold", -1.0, 1.0)
    heartbeat = opt_bool(params, "heartbeat", False)
    punctuation = opt_bool(params, "punctuation_prediction_enabled", True)
    if profile.punctuation == "always":
        punctuation = True  # the docs: this model always punctuates; the switch is ignored
    for key in ("inverse_text_normalization_enabled", "timestamp_alignment_enabled"):
        opt_bool(params, key, True)

    cfg = RecognizerConfig(
        language=language,
        allowed_languages=tuple(languages),
        max_sentence_silence_ms=int(silence) if silence is not None else 1300,
        semantic_punctuation=opt_bool(params, "semantic_punctuation_enabled", False),
        multi_threshold=opt_bool(params, "multi_threshold_mode_enabled", False),
        vad_threshold=0.5 + 0.4 * noise if noise is not None else 0.5,
        remove_disfluencies=opt_bool(params, "disfluency_removal_enabled", False),
        punctuation=punctuation,
        **runtime.settings.stream_options(),
    )
    return TaskRequest(task_id, profile, fmt.lower(), rate, heartbeat, cfg,
                       vocabulary_id=vocabulary_id)


# -- events ------------------------------------------------------------------------------------
def _event(task_id: str, event: str, payload: dict[str, Any], **header: Any) -> str:
    return json.dumps({"header": {"task_id": task_id, "event": event, **header, "attributes": {}},
                       "payload": payload}, ensure_ascii=False)


def sentence_json(r: SentenceResult) -> dict[str, Any]:
    return {
        "sentence_id": r.sentence_id,
        "begin_time": r.begin_ms,
        "end_time": r.end_ms if r.final else None,
        "text": r.text,
        "heartbeat": False,
        "sentence_end": r.final,
        "words": [{"begin_time": w.begin_ms, "end_time": w.end_ms, "text": w.text,
                   "punctuation": w.punctuation} for w in r.words],
    }


# -- the connection ------------------------------------------------------------------------------
class _Task:
    def __init__(self, req: TaskRequest, decoder: StreamDecoder, slot: Slot) -> None:
        self.req = req
        self.decoder = decoder
        self.slot = slot
        self.recognizer: StreamingRecognizer | None = None
        self.started = time.monotonic()
        self.last_audio = time.monotonic()
        self.audio_bytes = 0
        self.watchdog: asyncio.Task | None = None
        self.failed = False
        self.finishing = False  # finish-task received: the client now waits on us, not idle
        self.last_partial: SentenceResult | None = None  # Gummy chat: for vad_pre_end events
        self.last_translation: tuple[int, str] | None = None  # translation-only: last preview sent


class InferenceConnection:
    def __init__(self, ws: WebSocket, runtime: Runtime) -> None:
        self.ws = ws
        self.rt = runtime
        self.task: _Task | None = None
        self.principal: Principal | None = None
        self._model = ""  # the model of the latest run-task, for a refusal's usage record
        self._send_lock = asyncio.Lock()
        self._closed = False

    async def run(self) -> None:
        self.principal = await accept(self.rt, self.ws)
        if self.principal is None:
            return
        try:
            await self._loop()
        except WebSocketDisconnect:
            pass
        finally:
            self.rt.metrics.connections.dec()
            await self._end_task()
            self._closed = True

    async def _receive(self) -> dict[str, Any]:
        timeout = None if self.task else self.rt.settings.socket_idle_timeout_s
        try:
            return await asyncio.wait_for(self.ws.receive(), timeout)
        except TimeoutError:
            await self._close(1000, "idle connection closed")
            raise WebSocketDisconnect(1000) from None

    async def _loop(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is not None:
                await self._on_audio(data)
            else:
                await self._on_text(message.get("text") or "")
            if self._closed:
                return

    # -- text frames --------------------------------------------------------------------------
    async def _on_text(self, text: str) -> None:
        try:
            msg = json_body.loads(text)
            if not isinstance(msg, dict) or not isinstance(msg.get("header"), dict):
                raise ValueError("not a {header, payload} object")
        except ValueError as exc:
            await self._fail_connection(errors.PROTOCOL_ERROR,
                                        f"malformed message: expected a JSON object with a header "
                                        f"({exc})", self._running_task_id())
            return
        header = msg["header"]
        action = header.get("action")
        task_id = header.get("task_id") if isinstance(header.get("task_id"), str) else ""
        if action == "run-task":
            await self._run_task(msg, task_id)
        elif action == "continue-task":
            self._continue_task(msg, task_id)
        elif action == "finish-task":
            await self._finish_task(task_id)
        else:
            await self._fail_connection(errors.PROTOCOL_ERROR,
                                        f"unknown action {action!r}; expected run-task, "
                                        "continue-task or finish-task",
                                        self._running_task_id() or task_id)

    def _running_task_id(self) -> str:
        return self.task.req.task_id if self.task is not None else ""

    async def _run_task(self, msg: dict[str, Any], task_id: str) -> None:
        if self.task is not None:
            # The running task goes on; only the newcomer is refused.
            self.rt.metrics.refused("inference", errors.PROTOCOL_ERROR)
            await self._send(_event(task_id, "task-failed", {}, error_code=errors.PROTOCOL_ERROR,
                                    error_message="a task is already running on this "
                                                  "connection; send finish-task first"))
            return
        if self.rt.drain.draining:  # a reused connection gets no new task either
            await self._fail_connection(SHUTDOWN_CODE, SHUTDOWN_MESSAGE, task_id)
            return
        payload = msg.get("payload")
        self._model = known_model(self.rt.settings, payload.get("model")
                                  if isinstance(payload, dict) else None)
        try:
            req = parse_run_task(msg, self.rt)
            await self.rt.usage.admit_async(self.principal)  # daily audio hours
            if req.vocabulary_id is not None:
                assert self.principal is not None
                words = await asyncio.to_thread(hotwords_for, self.rt.vocabularies,
                                                self.principal.owner, req.profile, req.vocabulary_id)
                req.recognizer.hotwords = hotwords_from(words)
        except ServiceError as exc:
            await self._fail_connection(exc.code, exc.message, task_id)
            return
        try:
            slot = self.rt.capacity.slot(self.principal, stream=True)
        except ServiceError as exc:
            self.rt.metrics.tasks.labels("refused").inc()
            await self._fail_connection(exc.code, exc.message, task_id)
            return
        try:
            decoder = StreamDecoder(req.fmt, req.sample_rate)
        except AudioFormatError as exc:
            slot.release()
            await self._fail_connection(exc.code, exc.message, task_id)
            return
        task = _Task(req, decoder, slot)
        boundary = self._pre_end(task) if req.profile.kind == "chat" else None
        task.recognizer = self.rt.engine.recognizer(req.profile, req.recognizer,
                                                    self._emitter(task), boundary)
        self.task = task
        self.rt.metrics.session_started("inference", req.profile.name)
        await self._send(_event(req.task_id, "task-started", {}))
        task.watchdog = asyncio.create_task(self._watch(task))

    def _continue_task(self, msg: dict[str, Any], task_id: str) -> None:
        # Context updates (update_context): system text becomes decoder context for what follows.
        task = self.task
        if task is None or task.recognizer is None:
            return
        payload = msg.get("payload") or {}
        inp = payload.get("input") if isinstance(payload, dict) else None
        texts: list[str] = []
        if isinstance(inp, dict):
            for m in inp.get("messages") or []:
                if isinstance(m, dict) and isinstance(m.get("content"), str):
                    texts.append(m["content"])
        if texts:
            task.recognizer.config.prompt = " ".join(texts)[-2000:]

    async def _finish_task(self, task_id: str) -> None:
        task = self.task
        if task is None:
            return  # after the task ended (e.g. one-sentence mode): nothing left to do
        task.finishing = True
        try:
            assert task.recognizer is not None
            tail = await decode(task.decoder, task.decoder.flush)
            task.recognizer.feed(tail)
            await task.recognizer.finish()
        except AudioFormatError as exc:
            await self._fail_task(exc.code, exc.message)
            return
        except Exception as exc:  # engine trouble: tell the client, keep the server up
            log.exception("finishing task %s failed", task.req.task_id)
            await self._fail_task(errors.INTERNAL_ERROR, f"recognition failed: {exc}")
            return
        usage = {"duration": int(math.ceil(task.recognizer.audio_seconds))}
        await self._send(_event(task.req.task_id, "task-finished", {"output": {}, "usage": usage}))
        self.rt.metrics.tasks.labels("finished").inc()
        await self._end_task()

    # -- binary frames ------------------------------------------------------------------------
    async def _on_audio(self, data: bytes) -> None:
        task = self.task
        if task is None:
            await self._fail_connection(errors.PROTOCOL_ERROR,
                                        "audio received before run-task (or after the task "
                                        "ended); send run-task first")
            return
        if len(data) > self.rt.settings.max_frame_bytes:
            await self._fail_task(errors.INVALID_PARAMETER,
                                  f"audio frame of {len(data)} bytes exceeds the limit of "
                                  f"{self.rt.settings.max_frame_bytes} bytes")
            return
        task.last_audio = time.monotonic()
        task.audio_bytes += len(data)
        try:
            pcm = await decode(task.decoder, task.decoder.feed, data)
        except AudioFormatError as exc:
            await self._fail_task(exc.code, exc.message)
            return
        assert task.recognizer is not None
        task.recognizer.feed(pcm)
        self.rt.metrics.audio_seconds.inc(pcm.size / TARGET_RATE)
        if (task.req.profile.kind == "chat" and not task.recognizer.done
                and task.recognizer.audio_seconds > CHAT_MAX_AUDIO_S):
            await self._fail_task(errors.INVALID_PARAMETER,
                                  f"{task.req.profile.name} recognises one sentence within "
                                  f"{CHAT_MAX_AUDIO_S:.0f} s of audio; none was completed")
            return
        excess = task_audio_excess(task.recognizer.audio_seconds, self.rt.settings)
        if excess is not None:
            await self._fail_task(TASK_AUDIO_CODE, excess)

    # -- results ----------------------------------------------------------------------------------
    def _emitter(self, task: _Task):
        async def emit(result: SentenceResult) -> None:
            if self.task is not task or task.failed:
                return
            usage = ({"duration": int(math.ceil((result.end_ms or 0) / 1000))}
                     if result.final else None)
            req = task.req
            if req.profile.kind == "recognition":
                output = {"sentence": sentence_json(result)}
            else:
                output = gummy_output(result, transcription=req.transcription,
                                      translation=req.translation,
                                      targets=req.recognizer.translate_to)
                if not output:
                    return  # translation-only task: partials carry nothing to show
                if not req.transcription and not result.final:
                    # Translation-only: a preview is news only when its translation changed.
                    shown = (result.sentence_id, output["translations"][0]["text"])
                    if shown == task.last_translation:
                        return
                    task.last_translation = shown
                task.last_partial = None if result.final else result
            payload = {"output": output, "usage": usage}
            await self._send(_event(task.req.task_id, "result-generated", payload))
            self.rt.metrics.results.labels("final" if result.final else "partial").inc()
        return emit

    def _pre_end(self, task: _Task):
        """Gummy chat: when VAD sees the pause that may end the sentence, say so (vad_pre_end)."""
        def boundary(kind: str, segment: int, ms: int) -> None:
            r = task.last_partial
            if kind != "pause" or r is None or r.segment != segment or task.recognizer is None:
                return
            now_ms = int(task.recognizer.audio_seconds * 1000)
            output = gummy_output(r, transcription=task.req.transcription,
                                  translation=False, targets=(), pre_end=(ms, now_ms))
            if output:
                payload = {"output": output, "usage": None}
                asyncio.get_running_loop().create_task(
                    self._send(_event(task.req.task_id, "result-generated", payload)))
        return boundary

    async def _watch(self, task: _Task) -> None:
        """The idle rule (no speech for idle_timeout_s without heartbeat) and keep-alive results."""
        settings = self.rt.settings
        last_beat = time.monotonic()
        try:
            while self.task is task:
                await asyncio.sleep(min(1.0, settings.idle_timeout_s / 4))
                rec = task.recognizer
                if rec is None or task.finishing:
                    return
                now = time.monotonic()
                if task.req.heartbeat:
                    if now - task.last_audio > settings.idle_timeout_s:
                        await self._fail_task(errors.IDLE_TIMEOUT,
                                              f"no audio received for {settings.idle_timeout_s:.0f} s")
                        return
                    silent_for = now - max(rec.last_voice_monotonic, task.started)
                    if silent_for >= settings.heartbeat_interval_s and \
                            now - last_beat >= settings.heartbeat_interval_s:
                        last_beat = now
                        await self._send_heartbeat(task)
                else:
                    idle = now - max(rec.last_voice_monotonic, task.started)
                    if idle > settings.idle_timeout_s:
                        await self._fail_task(
                            errors.IDLE_TIMEOUT,
                            f"no speech for {settings.idle_timeout_s:.0f} s; set heartbeat=true "
                            "to keep a silent connection open")
                        return
        except asyncio.CancelledError:
            pass

    async def _send_heartbeat(self, task: _Task) -> None:
        assert task.recognizer is not None
        now_ms = int(task.recognizer.audio_seconds * 1000)
        sentence = {"begin_time": now_ms, "end_time": None, "text": "", "heartbeat": True,
                    "sentence_end": False, "words": []}
        await self._send(_event(task.req.task_id, "result-generated",
                                {"output": {"sentence": sentence}, "usage": None}))

    # -- endings ------------------------------------------------------------------------------------
    async def _send(self, text: str) -> None:
        if self._closed or self.ws.application_state != WebSocketState.CONNECTED:
            return
        async with self._send_lock:
            with contextlib.suppress(Exception):
                await self.ws.send_text(text)

    async def _fail_task(self, code: str, message: str) -> None:
        task = self.task
        if task is None or task.failed:
            return
        task.failed = True
        self.rt.metrics.tasks.labels("failed").inc()
        await self._fail_connection(code, message, task.req.task_id)

    async def shutdown(self, code: str, message: str) -> None:
        """Server shutdown: a running task gets task-failed, then the socket is closed cleanly."""
        if self.task is not None:
            await self._fail_task(code, message)
        await self._close(1001, "server shutting down")

    async def _fail_connection(self, code: str, message: str, task_id: str = "") -> None:
        """task-failed, then close: a failed connection is not reused (DashScope behaviour)."""
        log.info("task %s failed: %s: %s", task_id or "-", code, message)
        self.rt.metrics.refused("inference", code)
        if self.task is not None:
            self.task.failed = True  # counted as a failure when the task ends
        else:  # a refused run-task (or a protocol error between tasks)
            self.rt.usage.record(self.principal, self._model, failures=1)
        await self._send(_event(task_id, "task-failed", {}, error_code=code, error_message=message))
        await self._end_task()
        await self._close(1000, code)

    async def _close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self.ws.close(code, reason[:120])

    async def _end_task(self) -> None:
        task, self.task = self.task, None
        if task is None:
            return
        if task.watchdog is not None and task.watchdog is not asyncio.current_task():
            task.watchdog.cancel()
        # One usage record per task, with the seconds task-finished reports (ceil); a failed or
        # abandoned task still counts the audio it had recognized. Read before close() frees it.
        audio = task.recognizer.audio_seconds if task.recognizer is not None else 0.0
        if task.recognizer is not None:
            task.recognizer.close()
        task.decoder.close()
        task.slot.release()
        self.rt.usage.record(self.principal, task.req.profile.name, math.ceil(audio),
                             failures=int(task.failed))
        self.rt.metrics.session_ended("inference", task.req.profile.name)
