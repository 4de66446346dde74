"""Issue 9 items 18 and 20 (fun-asr-realtime part): what previews carry on the inference WebSocket.

- Gummy (`TranslationRecognizerRealtime`, official SDK): previews of an open sentence carry a
  provisional translation (`translations`, `sentence_end` false) before the sentence's final, and a
  translation-only task gets more than one event per sentence, as the translation grows.
- fun-asr-realtime (`Recognition`, official SDK): a preview's words carry their punctuation in
  `punctuation`, as finals do; a word is never punctuation alone.

Order, not timing: the Gummy tests send part of a sentence, then wait (as long as
VOXSCOPE_TEST_WAIT_S allows) for the provisional translation the server must send while that
sentence is still open, then send the rest.
"""

from __future__ import annotations

import os
import unicodedata

import pytest
from dashscope.audio.asr import Recognition, RecognitionResult, TranslationRecognizerRealtime

from tests.conftest import FAST_ENV
from tests.gummy.gummy_helpers import (
    Call,
    Recorder,
    cancel_silence_timer,
    check_english_translation,
    check_transcription,
    is_sentence_end,
    send_stream,
    start,
    stop_within,
)
from tests.protocols.inference_helpers import Recorder as RecognitionRecorder
from tests.protocols.inference_helpers import check_sentence, start_recognition, wait_for
from tests.protocols.inference_helpers import send_stream as send_recognition
from tests.support import ServerProcess, clip_pcm

WAIT_S = float(os.environ.get("VOXSCOPE_TEST_WAIT_S", "180"))
GUMMY = "gummy-realtime-v1"
LJ = "en_ljspeech_LJ001-0001"  # 9.7 s, one long read sentence ("Printing, in the only sense ...")
TRIES = 4
BECKETT = "en_beckett"  # 10 s of short sentences: previews show their full stops


@pytest.fixture(scope="module")
def server():
    # The idle rules must outlast the wait for a preview on a busy machine.
    env = {**FAST_ENV, "VOXSCOPE_IDLE_TIMEOUT_S": str(int(WAIT_S) + 60),
           "VOXSCOPE_SOCKET_IDLE_TIMEOUT_S": str(int(WAIT_S) + 60)}
    srv = ServerProcess(env=env, config={"server": {"max_sessions": 6}}).start()
    yield srv
    srv.stop()

# `dashscope_at` (tests/conftest.py) points the SDK at this module's `server`.


def _provisional(c: Call) -> bool:
    """A preview event with a non-empty English translation."""
    if c.kind != "event" or is_sentence_end(c) or c.translation is None:
        return False
    en = c.translation.get_translation("en")
    return en is not None and bool(en.text.strip())


def _translate_with_wait(transcription: bool) -> Recorder:
    """Send the first 5 s of LJ (mid-sentence), wait for a provisional translation, send the rest."""
    cb = Recorder()
    t = TranslationRecognizerRealtime(model=GUMMY, format="pcm", sample_rate=16000,
                                      transcription_enabled=transcription, translation_enabled=True,
                                      translation_target_languages=["en"], callback=cb)
    start(t, cb)
    pcm = clip_pcm(LJ)
    split = 5 * 32000
    send_stream(t, pcm[:split], chunk=3200, pace=0.1)
    # The SDK stops a task after 23 s without audio; the wait below may be longer on a busy machine.
    cancel_silence_timer(t)
    t._silence_timer = None  # noqa: SLF001 - else the SDK's worker arms a new one on the next frame
    got = wait_for(lambda: any(_provisional(c) for c in cb.calls) or "error" in cb.kinds(), WAIT_S)
    assert got, f"no provisional translation while the sentence was open: {cb.summary()}"
    send_stream(t, pcm[split:], chunk=12800, pace=None)  # the rest at once: nothing to wait for
    stop_within(t, WAIT_S)
    info = cb.summary()
    kinds = cb.kinds()
    assert "error" not in kinds and kinds.count("complete") == 1, info
    return cb


@pytest.mark.timeout(int(WAIT_S) * 2 + 60)
def test_gummy_previews_carry_provisional_translation(dashscope_at):
    cb = _translate_with_wait(transcription=True)
    info = cb.summary()
    events = cb.events()
    first_final = next(i for i, c in enumerate(events) if is_sentence_end(c))
    previews = [c for c in events[:first_final] if _provisional(c)]
    assert previews, f"no preview with a translation before the first sentence end: {info}"
    for c in events:
        assert c.transcription is not None, info
        check_transcription(c.transcription)
        if c.translation is not None:  # previews and finals alike: complete, English, same sentence
            en = c.translation.get_translation("en")
            assert en.is_sentence_end == c.transcription.is_sentence_end, info
            check_english_translation(c.translation, c.transcription.sentence_id)
    for c in cb.sentence_ends():
        check_english_translation(c.translation, c.transcription.sentence_id)
    for c in previews:
        assert not any(w.fixed for w in c.translation.get_translation("en").words), info


@pytest.mark.timeout(int(WAIT_S) * 2 + 60)
def test_gummy_translation_only_grows(dashscope_at):
    cb = _translate_with_wait(transcription=False)
    info = cb.summary()
    per_sentence: dict[int, list[Call]] = {}
    for c in cb.events():
        assert c.transcription is None, info  # transcription_enabled=False
        assert c.translation is not None, info
        check_english_translation(c.translation)
        per_sentence.setdefault(c.translation.get_translation("en").sentence_id, []).append(c)
    assert per_sentence, info
    first = per_sentence[min(per_sentence)]
    assert len(first) > 1, f"one event for the sentence: the translation did not grow: {info}"
    assert is_sentence_end(first[-1]) and not any(is_sentence_end(c) for c in first[:-1]), info
    # each preview is news: its translation differs from the one before
    texts = [c.translation.get_translation("en").text for c in first[:-1]]
    assert all(a != b for a, b in zip(texts, texts[1:], strict=False)), texts


def _is_punctuation(text: str) -> bool:
    return bool(text) and all(unicodedata.category(ch).startswith("P") for ch in text)


def _fun_asr_previews(pcm: bytes) -> RecognitionRecorder:
    cb = RecognitionRecorder()
    # A long max_sentence_silence keeps the clip one open sentence: many previews of it.
    r = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000, callback=cb,
                    max_sentence_silence=6000)
    start_recognition(r, cb)
    send_recognition(r, pcm, chunk=3200, pace=0.1)
    r.stop()
    assert "error" not in cb.kinds(), cb.summary()
    return cb


@pytest.mark.timeout(int(WAIT_S) + 120)
def test_fun_asr_preview_words_carry_punctuation(dashscope_at):
    """Whisper's previews are not always punctuated (a greedy short-window decode): sessions are
    repeated, a few at most, until previews showed punctuation; every word of every result must
    hold its punctuation in `punctuation`, never as a word of its own."""
    punctuated, runs = 0, []
    for _ in range(TRIES):
        cb = _fun_asr_previews(clip_pcm(BECKETT))
        runs.append(cb.summary())
        for c in cb.events():
            s = c.sentence
            check_sentence(s, RecognitionResult.is_sentence_end(s))
            for w in s["words"]:
                # the punctuation belongs to the word before it ("tried" + ".")
                assert not _is_punctuation(w["text"]), (w, s["text"])
            rebuilt = "".join(w["text"] + w["punctuation"] for w in s["words"])
            assert rebuilt == s["text"].replace(" ", ""), (rebuilt, s["text"])
            if not RecognitionResult.is_sentence_end(s):
                punctuated += sum(bool(w["punctuation"]) for w in s["words"])
        if punctuated:
            break
    # The clip's full stops must have shown in some preview, as punctuation of a word.
    assert punctuated, f"no preview word carried punctuation in {TRIES} sessions: {runs}"
