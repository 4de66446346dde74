"""Helpers for the Gummy acceptance tests (matrix rows 23-29, inference-websocket.md §10-11).

The client is always the official SDK: `dashscope.audio.asr.TranslationRecognizerRealtime`
(gummy-realtime-v1) and `TranslationRecognizerChat` (gummy-chat-v1), SDK 2.0.2.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from dashscope.audio.asr import (
    TranscriptionResult,
    TranslationRecognizerCallback,
    TranslationRecognizerChat,
    TranslationRecognizerRealtime,
    TranslationResult,
)
from dashscope.audio.asr.translation_recognizer import WordObj

from tests.support import CallbackLog, clip, error_rate, sdk_start_waits

HEX32 = re.compile(r"[0-9a-f]{32}")
# "Text matches" for transcriptions, as in tests/protocols: whisper-base hears en_ldc93s1 as "She had a
# dark suit and greasy wash for her all year." (0.36) every time, so that clip gets 0.5.
MAX_ERROR = 0.35
MAX_ERROR_FOR = {"en_ldc93s1": 0.5}


# -- audio -----------------------------------------------------------------------------------------
# -- callback recording ----------------------------------------------------------------------------
@dataclass
class Call:
    t: float
    kind: str  # open | event | complete | error | close
    request_id: str | None = None
    transcription: TranscriptionResult | None = None
    translation: TranslationResult | None = None
    usage: Any = None
    error: Any = None  # the DashScopeAPIResponse given to on_error


class Recorder(CallbackLog, TranslationRecognizerCallback):
    """Records every callback of a TranslationRecognizer* in order, with its arrival time."""

    Call = Call

    def on_event(self, request_id, transcription_result, translation_result, usage) -> None:
        self._add(Call(time.monotonic(), "event", request_id, transcription_result,
                       translation_result, usage))

    def on_error(self, message) -> None:
        self._add(Call(time.monotonic(), "error", error=message))
        self.done.set()

    def errors(self) -> list[Any]:
        return [c.error for c in self.calls if c.kind == "error"]

    def sentence_ends(self) -> list[Call]:
        return [c for c in self.events() if is_sentence_end(c)]

    def final_text(self) -> str:
        return "".join(c.transcription.text for c in self.sentence_ends() if c.transcription)

    def summary(self) -> str:
        out = []
        for c in self.calls:
            if c.kind == "event":
                tr, tl = c.transcription, c.translation
                t = (f"#{tr.sentence_id} {tr.text!r} end={tr.is_sentence_end} "
                     f"pre_end={tr.vad_pre_end}") if tr else "-"
                en = tl.get_translation("en") if tl else None
                out.append(f"event({t} | en={en.text if en else None!r} usage={c.usage})")
            elif c.kind == "error":
                e = c.error
                out.append(f"error({getattr(e, 'status_code', None)}, {getattr(e, 'code', None)!r}, "
                           f"{getattr(e, 'message', None)!r})")
            else:
                out.append(c.kind)
        return "; ".join(out)



def is_sentence_end(c: Call) -> bool:
    """WS §10.1: the transcription's or any translation's sentence_end."""
    return bool((c.transcription is not None and c.transcription.is_sentence_end)
                or (c.translation is not None and c.translation.is_sentence_end))


def raw(tr: TranscriptionResult) -> dict:
    """The JSON object the server sent as `output.transcription` (the SDK keeps it as `_raw_data`)."""
    data = tr._raw_data  # noqa: SLF001 - the SDK's attributes default when a key is absent
    assert isinstance(data, dict), data
    return data


# -- SDK driving ----------------------------------------------------------------------------------
def start(t: TranslationRecognizerRealtime | TranslationRecognizerChat, cb: Recorder) -> None:
    """`t.start()`; a start the server refused right away (on_error already in) is not an error here.

    SDK 2.0.2's `start()` raises `InvalidTask` when its worker thread has already ended by the time it
    checks, which is what happens when the server answers run-task with task-failed quickly. The
    test then looks at the recorded `on_error`. Without an `on_error` the start is retried once (the
    SDK's own start race, see tests/protocols/inference_helpers.start_recognition).
    """
    from dashscope.common.error import InvalidTask

    sdk_start_waits(t)  # the other side of that race: start() returns, the audio goes nowhere
    try:
        t.start()
    except InvalidTask:
        if "error" in cb.kinds():
            return
        cb.reset()
        t.start()


def cancel_silence_timer(t) -> None:
    """After a refused task: cancel the SDK's 23 s silence Timer, which `stop()` no longer reaches
    (it raises first) and which, a non-daemon thread, would hold the interpreter's exit for 23 s."""
    timer = getattr(t, "_silence_timer", None)
    if timer is not None:
        timer.cancel()


def send_stream(t, data: bytes, chunk: int, pace: float | None) -> int | None:
    """Send `data` in `chunk`-byte frames every `pace` s (None: burst).

    Returns the byte offset of the first frame `send_audio_frame` refused (returned False, chat
    mode), or None when every frame was taken. The refused frame and the rest are not sent.
    """
    begin = time.monotonic()
    for n, i in enumerate(range(0, len(data), chunk)):
        if t.send_audio_frame(data[i : i + chunk]) is False:
            return i
        if pace:
            delay = begin + (n + 1) * pace - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    return None


def stop_within(t, seconds: float) -> None:
    """`t.stop()` in a helper thread: a server that never answers finish-task fails, not hangs."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            t.stop()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            failure.append(exc)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(seconds)
    assert not th.is_alive(), f"stop() did not return within {seconds:.0f} s (no task-finished)"
    if failure:
        raise failure[0]


# -- checks ----------------------------------------------------------------------------------------
def check_word(w: WordObj, final: bool) -> None:
    assert isinstance(w, WordObj), w
    assert isinstance(w.text, str) and w.text, w
    assert isinstance(w.begin_time, int) and isinstance(w.end_time, int), w
    assert w.begin_time <= w.end_time, w
    assert isinstance(w.fixed, bool), w
    if final:
        assert w.fixed is True, w


def check_transcription(tr: TranscriptionResult) -> None:
    """The shape the SDK user reads (WS §10.1)."""
    assert isinstance(tr, TranscriptionResult), tr
    assert isinstance(tr.sentence_id, int) and not isinstance(tr.sentence_id, bool), tr
    assert isinstance(tr.text, str), tr
    assert isinstance(tr.begin_time, int) and isinstance(tr.end_time, int), tr
    assert tr.begin_time <= tr.end_time, tr
    assert isinstance(tr.words, list), tr
    final = bool(tr.is_sentence_end)
    for w in tr.words:
        check_word(w, final)
    if final:
        assert tr.text.strip() and tr.words, tr
    data = raw(tr)
    if final:  # WS §10.1: end_time for finals, end_time null + current_time for previews
        assert isinstance(data.get("end_time"), int), data
    else:
        assert data.get("end_time") is None and isinstance(data.get("current_time"), int), data
    for key in ("vad_pre_end", "pre_end_failed", "pre_end_start_time", "pre_end_end_time"):
        assert key in data, (key, data)
    assert isinstance(data["vad_pre_end"], bool), data
    if data["vad_pre_end"]:
        assert isinstance(data["pre_end_start_time"], int) and data["pre_end_start_time"] >= 0, data
        assert isinstance(data["pre_end_end_time"], int), data
        assert data["pre_end_end_time"] >= data["pre_end_start_time"], data


def check_english_translation(tl: TranslationResult, sentence_id: int | None = None) -> str:
    """`get_language_list() == ['en']` and a non-empty English text; returns the text."""
    assert isinstance(tl, TranslationResult), tl
    assert tl.get_language_list() == ["en"], tl
    en = tl.get_translation("en")
    assert en is not None and en.language == "en", tl
    assert isinstance(en.text, str) and en.text.strip(), tl
    if sentence_id is not None:
        assert en.sentence_id == sentence_id, (en.sentence_id, sentence_id, tl)
    for w in en.words:
        check_word(w, final=bool(en.is_sentence_end))
    assert latin_share(en.text) >= 0.9, f"not English text: {en.text!r}"
    return en.text


def assert_matches(clip_id: str, text: str, context: Any = "") -> float:
    c = clip(clip_id)
    err = error_rate(c["lang"], c["reference"], text)
    assert err <= MAX_ERROR_FOR.get(clip_id, MAX_ERROR), f"{clip_id}: error {err:.2f} for {text!r} {context}"
    return err


def error_text(e: Any) -> str:
    return f"{getattr(e, 'code', '')} {getattr(e, 'message', '')}"


# -- translation content ---------------------------------------------------------------------------
_STOP = """
a an the of to in on at by for with from about into as and or but if so than then that this these
those there it its it's is are was were be been being am do does did has have had will would can
could shall should may might must i me my we us our you your he him his she her they them their
what which who whom where when how all any some such very just also only own same too one
"""
STOP_WORDS = frozenset(_STOP.split())


def content_words(text: str) -> set[str]:
    """Lower-case latin words minus STOP_WORDS, a trailing plural 's' dropped ("sands" = "sand")."""
    out = set()
    for w in re.findall(r"[a-z0-9']+", text.lower()):
        w = w.strip("'")
        if not w or w in STOP_WORDS:
            continue
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.add(w)
    return out


def overlap(reference: str, hypothesis: str) -> float:
    """Share of the reference's content words that the hypothesis also has."""
    ref = content_words(reference)
    return len(ref & content_words(hypothesis)) / len(ref) if ref else 0.0


def latin_share(text: str) -> float:
    """Share of the letters in `text` that are ASCII (an English translation is ~1.0)."""
    letters = [ch for ch in text if ch.isalpha()]
    return sum(ch.isascii() for ch in letters) / len(letters) if letters else 0.0
