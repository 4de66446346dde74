"""Gummy one-sentence mode (`TranslationRecognizerChat`, gummy-chat-v1): matrix rows 26, 27, 28.

One real `voxscope serve` process per module (fixture `server`), the official SDK 2.0.2, real clips.
WS §11: after the first result with a sentence end the SDK's `send_audio_frame()` returns False
and drops audio; the server keeps the task open until `stop()` sends finish-task, answers it with
task-finished (`on_complete`), and never shows a second sentence.
"""

from __future__ import annotations

import time

import pytest
from dashscope.audio.asr import TranslationRecognizerChat

from tests.gummy.gummy_helpers import (
    Recorder,
    assert_matches,
    cancel_silence_timer,
    check_english_translation,
    check_transcription,
    error_text,
    raw,
    send_stream,
    start,
    stop_within,
)
from tests.support import clip, clip_pcm, norm_words, silence_pcm, trim_silence, wav_bytes

MODEL = "gummy-chat-v1"
FIRST = "zh_paddlespeech_zh"  # 5.0 s: "我认为跑步最重要的就是给我带来了身体健康"
SECOND = "zh_funasr_asr_example"  # 5.5 s: "欢迎大家来体验达摩院推出的语音识别模型"


def two_sentences() -> tuple[bytes, int]:
    """FIRST, 1.5 s of silence (more than the 1.3 s sentence pause), SECOND; and FIRST's length."""
    first = clip_pcm(FIRST)
    return first + silence_pcm(1.5) + clip_pcm(SECOND), len(first)


def check_one_sentence(cb: Recorder, stop_called: float, translation: bool) -> None:
    """Row 26's "caller observes", minus the send_audio_frame part."""
    info = cb.summary()
    kinds = cb.kinds()
    assert kinds[0] == "open", info
    assert "error" not in kinds, info
    assert kinds.count("complete") == 1, info
    complete = next(c for c in cb.calls if c.kind == "complete")
    assert complete.t >= stop_called, f"on_complete before stop(): {info}"  # task kept open
    assert kinds[-1] == "close", info

    finals = cb.sentence_ends()
    assert len(finals) == 1, f"{len(finals)} sentence ends in one-sentence mode: {info}"
    final = finals[0]
    assert final.transcription is not None and final.transcription.is_sentence_end, info
    assert_matches(FIRST, final.transcription.text, info)
    sid = final.transcription.sentence_id
    for c in cb.events():
        assert c.transcription is not None, info
        check_transcription(c.transcription)
        # the raw JSON has the vad pre-end fields (the SDK's attributes default when absent)
        assert "vad_pre_end" in str(c.transcription), str(c.transcription)
        # one sentence only: nothing of the second sentence, before or after the end
        assert c.transcription.sentence_id == sid, f"a second sentence was shown: {info}"
        if translation:
            if c.translation is not None:
                check_english_translation(c.translation, sid)
        else:
            assert c.translation is None, info
    assert cb.events()[-1] is final, f"results after the sentence end: {info}"
    if translation:
        assert final.translation is not None, info


# -- row 26: paced PCM, stop sending when send_audio_frame() returns False -------------------------
@pytest.mark.timeout(90)
def test_row26_chat_paced_pcm_stops_after_first_sentence(dashscope_at):
    data, first_len = two_sentences()
    cb = Recorder()
    c = TranslationRecognizerChat(model=MODEL, format="pcm", sample_rate=16000,
                                  transcription_enabled=True, translation_enabled=True,
                                  translation_target_languages=["en"], callback=cb)
    start(c, cb)
    refused_at = send_stream(c, data, chunk=3200, pace=0.1)
    stop_called = time.monotonic()
    stop_within(c, 60)
    info = cb.summary()

    # recognition stopped at the pause, while the second sentence was still being sent
    assert refused_at is not None, f"send_audio_frame never returned False: {info}"
    assert first_len < refused_at < len(data), (refused_at, first_len, len(data), info)
    assert c.send_audio_frame(data[:3200]) is False  # and keeps refusing
    check_one_sentence(cb, stop_called, translation=True)
    # paced speech with pauses: the server announced at least one pre-end (WS §11, seed 003)
    pre_ends = [raw(e.transcription) for e in cb.events() if raw(e.transcription)["vad_pre_end"]]
    assert pre_ends, info
    final = cb.sentence_ends()[0].transcription
    for p in pre_ends:
        assert final.begin_time <= p["pre_end_start_time"] <= p["pre_end_end_time"], (p, info)


# -- row 27: WAV bytes in 12 800-byte chunks, burst (seed 003 local-file sample) -------------------
@pytest.mark.timeout(90)
def test_row27_chat_wav_burst(dashscope_at):
    data, _ = two_sentences()
    wav = wav_bytes(data)
    cb = Recorder()
    c = TranslationRecognizerChat(model=MODEL, format="wav", sample_rate=16000, callback=cb)
    start(c, cb)
    send_stream(c, wav, chunk=12800, pace=None)  # the seed breaks out when it returns False
    stop_called = time.monotonic()
    stop_within(c, 60)
    # a sentence end was received: send_audio_frame refuses from now on (raises if none was)
    assert c.send_audio_frame(wav[:12800]) is False, cb.summary()
    check_one_sentence(cb, stop_called, translation=False)


# -- row 28: continuous speech longer than Whisper's 30 s window ----------------------------------
LONG = ["en_librispeech_1995-1837-0001", "en_ljspeech_LJ001-0001", "en_fleurs_000",
        "en_ljspeech_LJ001-0001"]


@pytest.mark.timeout(150)
def test_row28_chat_long_continuous_speech_ends(dashscope_at):
    parts = [trim_silence(clip_pcm(i)) for i in LONG]  # no pause anywhere near 1.3 s
    data = b"".join(parts)
    assert 34 <= len(data) / 32000 <= 41, len(data) / 32000
    cb = Recorder()
    c = TranslationRecognizerChat(model=MODEL, format="pcm", sample_rate=16000, callback=cb)
    start(c, cb)
    send_stream(c, data, chunk=12800, pace=None)
    stop_within(c, 120)  # no hang: finish-task is answered
    info = cb.summary()
    kinds = cb.kinds()
    assert kinds.count("complete") + kinds.count("error") == 1, info
    if "error" in kinds:  # a clear refusal is allowed by the policy
        err = cb.errors()[0]
        assert err.status_code != 200 and err.code and err.message, error_text(err)
        assert not cb.sentence_ends(), info
        return
    finals = cb.sentence_ends()
    assert len(finals) == 1, info
    final = finals[0].transcription
    check_transcription(final)
    assert final.end_time <= 60000, info  # the sentence ended by 60 s of audio
    # the sentence holds what was said up to its end: the clips that lie wholly inside it
    ref, offset = [], 0
    for clip_id, part in zip(LONG, parts, strict=True):
        offset += len(part) * 1000 // 32000
        if offset <= final.end_time:
            ref += norm_words(clip(clip_id)["reference"])
    assert len(ref) >= 40, (ref, final.end_time)
    hyp = set(norm_words(final.text))
    recall = sum(w in hyp for w in ref) / len(ref)
    assert recall >= 0.8, f"recall {recall:.2f}: {final.text!r}"
    assert cb.events()[-1] is finals[0], f"results after the sentence end: {info}"


# -- 8 kHz audio: gummy-chat-v1 takes 16 kHz only -------------------------------------------------
@pytest.mark.timeout(90)
def test_chat_8k_refused_then_serves(dashscope_at):
    cb = Recorder()
    c = TranslationRecognizerChat(model=MODEL, format="pcm", sample_rate=8000, callback=cb)
    start(c, cb)
    assert cb.done.wait(10), cb.summary()
    cancel_silence_timer(c)
    info = cb.summary()
    assert cb.kinds().count("error") == 1 and "complete" not in cb.kinds(), info
    assert not cb.events(), info
    err = cb.errors()[0]
    assert err.status_code != 200 and err.code, info
    assert "8000" in err.message and "16000" in err.message, err.message

    # the same server then runs a normal one-sentence task
    cb = Recorder()
    c = TranslationRecognizerChat(model=MODEL, format="pcm", sample_rate=16000,
                                  translation_enabled=True, translation_target_languages=["en"],
                                  callback=cb)
    start(c, cb)
    send_stream(c, clip_pcm(FIRST), chunk=12800, pace=None)
    stop_within(c, 60)
    info = cb.summary()
    assert "error" not in cb.kinds() and cb.kinds().count("complete") == 1, info
    finals = cb.sentence_ends()
    assert len(finals) == 1, info
    assert_matches(FIRST, finals[0].transcription.text, info)
    check_english_translation(finals[0].translation, finals[0].transcription.sentence_id)
