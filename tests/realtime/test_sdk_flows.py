"""Matrix rows 30-35: the official SDK's `OmniRealtimeConversation` against a real server.

VAD mode (paced, as the seeds send), manual mode with commit, clear, the legacy `pcm16` update,
8 kHz through the new-style `input_audio_config`, and context biasing with `corpus_text`.
"""

from __future__ import annotations

import pytest
from dashscope.audio.qwen_omni import MultiModality
from dashscope.audio.qwen_omni.omni_realtime import AudioFormatConfig, TranscriptionParams

from tests.realtime.helpers import (
    COMPLETED,
    FINISHED,
    assert_matches,
    check_created,
    check_manual_flow,
    check_spans,
    check_vad_flow,
    clip_pcm,
    close_quietly,
    connect,
    joined,
    send,
    silence,
    transcripts,
    update,
)
from tests.support import clip, error_rate


def _ms(pcm: bytes, rate: int = 16000) -> float:
    return len(pcm) / 2 / rate * 1000

ZH_A, ZH_B = "zh_funasr_asr_example", "zh_paddlespeech_zh"
EN_SHORT, EN_LONG = "en_ldc93s1", "en_beckett"


def _finish(conv, rec) -> None:
    """end_session() returns (no exception, within the SDK's 20 s), then on_close follows."""
    conv.end_session()
    assert rec.types()[-1] == FINISHED, rec.types()
    rec.wait_closed(5)


# -- row 30: VAD mode, seed 002 call, paced ------------------------------------------------------
@pytest.mark.timeout(60)
def test_row30_vad_mode_event_order(server):
    conv, rec = connect(server)
    try:
        conv.update_session(output_modalities=[MultiModality.TEXT], enable_input_audio_transcription=True,
                            transcription_params=TranscriptionParams(language="zh", sample_rate=16000,
                                                                     input_audio_format="pcm"))
        a, b = clip_pcm(ZH_A), clip_pcm(ZH_B)
        pcm = silence(0.5) + a + silence(1.5) + b + silence(1.0)
        send(conv, pcm, 3200, pace=0.1)
        _finish(conv, rec)
    finally:
        close_quietly(conv)
    events = rec.events
    session_id = check_created(events[0])
    assert conv.get_session_id() == session_id
    items = check_vad_flow(events, 2)
    assert_matches(ZH_A, items[0], context=items)
    assert_matches(ZH_B, items[1], context=items)
    b_at = 500 + _ms(a) + 1500
    check_spans(events, [(500, 500 + _ms(a)), (b_at, b_at + _ms(b))])
    updated = events[1]["session"]
    assert updated["id"] == session_id, updated
    assert updated["turn_detection"]["type"] == "server_vad", updated
    # on_close comes after every event (the server closed after session.finished)
    kinds = [k for k, _ in rec.calls]
    assert kinds.index("close") > max(i for i, k in enumerate(kinds) if k == "event"), kinds


# -- row 31: manual mode, commit ---------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_row31_manual_mode_commit(server):
    conv, rec = connect(server)
    try:
        update(conv, vad=False, language="en")
        rec.wait_type("session.updated", 10)
        send(conv, clip_pcm(EN_SHORT) + silence(1.0) + clip_pcm(EN_LONG))
        n = len(rec.events)
        conv.commit()
        # The commit itself (not session.finish) triggers the transcription.
        rec.wait_type(COMPLETED, 30, start=n)
        _finish(conv, rec)
    finally:
        close_quietly(conv)
    events = rec.events
    assert conv.get_session_id() == check_created(events[0])
    assert events[1]["session"]["turn_detection"] is None, events[1]
    (text,) = check_manual_flow(events, 1)
    ref = clip(EN_SHORT)["reference"] + " " + clip(EN_LONG)["reference"]
    rate = error_rate("en", ref, text)
    assert rate <= 0.2, (rate, text)  # the whole buffer, both clips, in one transcript


# -- row 32: clear ----------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_row32_clear_discards_appended_audio(server):
    conv, rec = connect(server)
    try:
        update(conv, vad=False, language="en")
        send(conv, clip_pcm(EN_LONG))  # clip A
        conv.clear_appended_audio()
        send(conv, clip_pcm(EN_SHORT))  # clip B
        conv.commit()
        _finish(conv, rec)
    finally:
        close_quietly(conv)
    (text,) = check_manual_flow(rec.events, 1)
    assert_matches(EN_SHORT, text)
    words = set(text.lower().replace(".", " ").replace(",", " ").split())
    assert not words & {"ever", "tried", "failed", "matter", "fail", "try", "better"}, text


# -- row 33: legacy pcm16 update (no transcription_params) ----------------------------------------
@pytest.mark.timeout(60)
def test_row33_legacy_pcm16_update(server):
    conv, rec = connect(server)
    try:
        conv.update_session(output_modalities=[MultiModality.TEXT])
        send(conv, silence(0.5) + clip_pcm(EN_SHORT) + silence(1.0), 3200, pace=0.1)
        _finish(conv, rec)
    finally:
        close_quietly(conv)
    events = rec.events
    assert conv.get_session_id() == check_created(events[0])
    (text,) = check_vad_flow(events, 1)
    assert_matches(EN_SHORT, text)
    check_spans(events, [(500, 500 + _ms(clip_pcm(EN_SHORT)))])


# -- row 34: 8 kHz via input_audio_config ---------------------------------------------------------
@pytest.mark.timeout(60)
def test_row34_8khz_input_audio_config(server):
    conv, rec = connect(server)
    try:
        conv.update_session(output_modalities=[MultiModality.TEXT],
                            input_audio_config=AudioFormatConfig(type="pcm", sample_rate=8000),
                            transcription_params=TranscriptionParams(language="zh"))
        pcm8 = silence(0.5, 8000) + clip_pcm(ZH_B, 8000) + silence(1.0, 8000)
        send(conv, pcm8, 1600, pace=0.1)  # 0.1 s of 8 kHz PCM16 per append
        _finish(conv, rec)
    finally:
        close_quietly(conv)
    events = rec.events
    assert conv.get_session_id() == check_created(events[0])
    assert events[1]["session"].get("sample_rate") == 8000, events[1]
    (text,) = check_vad_flow(events, 1)
    assert_matches(ZH_B, text)
    check_spans(events, [(500, 500 + _ms(clip_pcm(ZH_B, 8000), 8000))])  # ms of 8 kHz audio


# -- row 35: context biasing with corpus_text -------------------------------------------------------
def _vad_burst(server, clip_id: str, corpus: str | None) -> tuple[str, list[dict]]:
    conv, rec = connect(server)
    try:
        update(conv, vad=True, language="zh", corpus_text=corpus)
        send(conv, clip_pcm(clip_id) + silence(1.5), 12800)
        _finish(conv, rec)
    finally:
        close_quietly(conv)
    assert not rec.errors(), rec.errors()
    return joined(rec.events, "zh"), rec.events


@pytest.mark.timeout(90)
def test_row35_corpus_text_biases_recognition(server):
    """`corpus_text` is accepted, echoed, and reaches the decoder.

    Without it, this model hears "语音识别" in zh_funasr_asr_example as "运音识别" (VAD mode); with
    '达摩院 语音识别' as corpus text both terms come out right. If the server dropped the corpus
    the biased transcript would equal the plain one and miss the term.
    """
    corpus = "达摩院 语音识别"
    plain, _ = _vad_burst(server, ZH_A, None)
    biased, events = _vad_burst(server, ZH_A, corpus)
    print(f"\nwithout corpus: {plain}\nwith corpus:    {biased}")
    updated = events[1]
    assert updated["type"] == "session.updated", updated
    assert updated["session"]["input_audio_transcription"]["corpus"] == {"text": corpus}, updated
    assert transcripts(events), events
    for term in ("达摩院", "语音识别"):
        assert term in biased, (term, biased, plain)
    assert error_rate("zh", clip(ZH_A)["reference"], biased) <= error_rate(
        "zh", clip(ZH_A)["reference"], plain), (plain, biased)


# -- beyond the matrix rows: clear in VAD mode, finish without commit, odd chunk sizes ------------
@pytest.mark.timeout(60)
def test_vad_clear_keeps_committed_item(server):
    """`clear` drops uncommitted audio only (RT §3); an item VAD already committed (speech_stopped,
    input_audio_buffer.committed sent) still gets its transcription."""
    conv, rec = connect(server)
    try:
        update(conv, vad=True, language="en")
        send(conv, silence(0.3) + clip_pcm(EN_SHORT) + silence(1.5), 12800)
        committed = rec.wait_type("input_audio_buffer.committed", 20)
        conv.clear_appended_audio()
        send(conv, silence(0.3) + clip_pcm(EN_SHORT) + silence(1.5), 12800)
        _finish(conv, rec)
    finally:
        close_quietly(conv)
    done = [e for e in rec.events if e["type"] == COMPLETED and e["item_id"] == committed["item_id"]]
    assert len(done) == 1, ("the committed item never completed", committed["item_id"], rec.types())
    assert_matches(EN_SHORT, done[0]["transcript"])
    items = check_vad_flow(rec.events, 2, text_before_stop=False)  # burst: previews come late
    assert_matches(EN_SHORT, items[1])


@pytest.mark.timeout(60)
def test_vad_clear_keeps_session_timeline(server):
    """audio_start_ms / audio_end_ms count the session's audio (RT §5.3): after a clear they go
    on from where the audio was, they do not restart at 0."""
    conv, rec = connect(server)
    try:
        update(conv, vad=True, language="en")
        first = silence(0.3) + clip_pcm(EN_SHORT) + silence(1.5)
        send(conv, first, 12800)
        rec.wait_type("input_audio_buffer.committed", 20)
        conv.clear_appended_audio()
        send(conv, silence(0.3) + clip_pcm(EN_SHORT) + silence(1.5), 12800)
        _finish(conv, rec)
    finally:
        close_quietly(conv)
    starts = [e["audio_start_ms"] for e in rec.events if e["type"] == "input_audio_buffer.speech_started"]
    assert len(starts) == 2, rec.types()
    assert starts[1] >= _ms(first), (starts, _ms(first))


@pytest.mark.timeout(60)
def test_manual_finish_without_commit_transcribes(server):
    """RT §6.2: session.finish flushes audio appended but never committed (the safer reading)."""
    conv, rec = connect(server)
    try:
        update(conv, vad=False, language="en")
        send(conv, clip_pcm(EN_LONG), 12800)
        _finish(conv, rec)
    finally:
        close_quietly(conv)
    (text,) = check_manual_flow(rec.events, 1)
    assert_matches(EN_LONG, text)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", [1001, 1024, 64000])
def test_append_sizes(server, size):
    """Appends of any byte count, odd ones included (a sample split across two appends), as the
    Java sample's 1 024-byte reads or one big append."""
    conv, rec = connect(server)
    try:
        update(conv, vad=False, language="en")
        send(conv, clip_pcm(EN_LONG), size)
        conv.commit()
        _finish(conv, rec)
    finally:
        close_quietly(conv)
    (text,) = check_manual_flow(rec.events, 1)
    assert_matches(EN_LONG, text, limit=0.12)
