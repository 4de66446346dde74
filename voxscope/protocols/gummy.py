"""Gummy on the inference WebSocket: realtime recognition + translation, one-sentence (chat) mode.

`TranslationRecognizerRealtime` (gummy-realtime-v1) and `TranslationRecognizerChat` (gummy-chat-v1)
use the same run-task / finish-task frames as `Recognition`; what differs are the parameters
(source_language, transcription_enabled, translation_enabled, translation_target_languages) and
the result shape (`output.transcription` + `output.translations[]`, inference-websocket.md §10-11).

Translation runs on Whisper's own translate task, which only produces English. Other targets are
refused with the list of supported ones: untranslated text is never passed off as a translation.
"""

from __future__ import annotations

from typing import Any

from voxscope.config import Profile
from voxscope.engine.recognizer import RecognizerConfig, ResultWord, SentenceResult
from voxscope.protocols import errors
from voxscope.protocols.errors import ProtocolError
from voxscope.protocols.params import opt_bool
from voxscope.service.requests import resolve_language

TRANSLATION_TARGETS = ("en",)
CHAT_MAX_AUDIO_S = 60.0  # gummy-chat-v1 recognises one sentence within about a minute


def gummy_config(profile: Profile, params: dict[str, Any], languages: list[str],
                 stream_options: dict[str, Any]) -> tuple[RecognizerConfig, bool, bool]:
    """Recognizer settings plus (transcription_enabled, translation_enabled); `stream_options`:
    the server's (Settings.stream_options)."""
    source = params.get("source_language")
    language = None
    if source != "auto":
        language = resolve_language(source, languages, profile.name, field="source_language",
                                    also=("auto",))
    transcription = opt_bool(params, "transcription_enabled", True)
    translation = opt_bool(params, "translation_enabled", False)
    targets = params.get("translation_target_languages")
    if targets is not None and (not isinstance(targets, list)
                                or not all(isinstance(t, str) for t in targets)):
        raise ProtocolError(errors.INVALID_PARAMETER,
                            "translation_target_languages must be a list of language codes")
    if translation:
        if not targets:
            raise ProtocolError(errors.INVALID_PARAMETER, "translation_enabled needs "
                                "translation_target_languages, e.g. ['en']")
        unsupported = [t for t in targets if t.lower() not in TRANSLATION_TARGETS]
        if unsupported:
            raise ProtocolError(errors.UNSUPPORTED,
                                f"translation into {', '.join(unsupported)} is not supported by the "
                                f"local model; supported target languages: "
                                f"{', '.join(TRANSLATION_TARGETS)}")
    if not transcription and not translation:
        raise ProtocolError(errors.INVALID_PARAMETER,
                            "enable transcription_enabled or translation_enabled (or both)")
    chat = profile.kind == "chat"
    cfg = RecognizerConfig(
        language=language, allowed_languages=tuple(languages),
        translate_to=tuple(t.lower() for t in targets) if translation and targets else (),
        max_sentences=1 if chat else None,
        max_sentence_s=29.5,
        **stream_options,
    )
    return cfg, transcription, translation


def _words(words: list[ResultWord], stable_chars: int | None) -> list[dict[str, Any]]:
    out, seen = [], 0
    for w in words:
        seen += len(w.text) + len(w.punctuation)
        out.append({"begin_time": w.begin_ms, "end_time": w.end_ms, "text": w.text + w.punctuation,
                    "fixed": stable_chars is None or seen <= stable_chars})
    return out


def gummy_output(r: SentenceResult, *, transcription: bool, translation: bool,
                 targets: tuple[str, ...], pre_end: tuple[int, int] | None = None) -> dict[str, Any]:
    """`payload.output` for a result; `pre_end` = (start_ms, end_ms) of a pause VAD just saw."""
    out: dict[str, Any] = {}
    end = r.end_ms if r.final else None
    if transcription:
        out["transcription"] = {
            "sentence_id": r.sentence_id, "begin_time": r.begin_ms, "end_time": end,
            "current_time": r.current_ms, "text": r.text,
            "words": _words(r.words, None if r.final else r.stable_chars),
            "sentence_end": r.final,
            "vad_pre_end": pre_end is not None, "pre_end_failed": False,
            "pre_end_timemillis": (pre_end[1] - pre_end[0]) if pre_end else -1,
            "pre_end_start_time": pre_end[0] if pre_end else -1,
            "pre_end_end_time": pre_end[1] if pre_end else -1,
        }
    if translation and (r.final or r.translations):
        # Previews carry the open sentence's provisional translation (when there is one yet),
        # its words not fixed, sentence_end false; the final carries the sentence's translation.
        out["translations"] = [{
            "sentence_id": r.sentence_id, "lang": lang, "begin_time": r.begin_ms, "end_time": end,
            "current_time": r.current_ms, "text": r.translations[lang].text if lang in r.translations
            else "", "words": _words(r.translations[lang].words, None if r.final else 0)
            if lang in r.translations else [], "sentence_end": r.final,
        } for lang in targets]
    return out
