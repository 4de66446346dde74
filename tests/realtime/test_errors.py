"""Matrix rows 39-41 and the bad inputs a client can send inside a session (SDK as the client).

Every bad input must come back as an `error` event
`{type: 'error', error: {type: 'invalid_request_error', code: <str>, message: <str>,
event_id: <the offending event's id>}}` (RT §5.10), the session must stay usable (proved by a
transcription in the same session) and the server must go on serving new sessions.
"""

from __future__ import annotations

import json
import random

import pytest
from dashscope.audio.qwen_omni import MultiModality
from dashscope.audio.qwen_omni.omni_realtime import AudioFormatConfig, TranscriptionParams

from tests.realtime.helpers import (
    COMMITTED,
    COMPLETED,
    FINISHED,
    assert_matches,
    b64,
    check_error,
    check_vad_flow,
    clip_pcm,
    close_quietly,
    connect,
    good_session,
    joined,
    manual_transcription,
    send,
    silence,
    update,
)
from tests.support import wav_bytes

EN = "en_ldc93s1"
EN_LONG = "en_beckett"


@pytest.fixture()
def session(server):
    """An SDK session (session.created seen); afterwards the server still serves a new one."""
    conv, rec = connect(server)
    rec.wait_type("session.created", 10)
    try:
        yield conv, rec
    finally:
        close_quietly(conv)
    assert server.alive(), server.log()
    good_session(server)


def _error_for(rec, event_id: str, timeout: float = 10.0) -> dict:
    ev = rec.wait(lambda e: e.get("type") == "error" and (e.get("error") or {}).get("event_id") == event_id,
                  timeout)
    return check_error(ev, event_id)


def _finish_clean(conv, rec) -> None:
    conv.end_session()
    assert rec.types()[-1] == FINISHED, rec.types()
    rec.wait_closed(5)


# -- row 39: a rejected session.update --------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("params", "named"), [
    pytest.param({"transcription_params": TranscriptionParams(language="en", sample_rate=44100)}, "44100",
                 id="sample_rate_44100"),
    pytest.param({"transcription_params": TranscriptionParams(language="en", input_audio_format="mp3")},
                 "mp3", id="input_audio_format_mp3"),
    pytest.param({"input_audio_config": AudioFormatConfig(type="pcm", sample_rate=44100)}, "44100",
                 id="audio_config_44100"),
    pytest.param({"input_audio_config": AudioFormatConfig(type="mp3", sample_rate=16000)}, "mp3",
                 id="audio_config_mp3"),
    pytest.param({"transcription_params": TranscriptionParams(language="xx")}, "xx", id="language_xx"),
    pytest.param({"turn_detection_silence_duration_ms": 100}, "silence_duration_ms", id="silence_100ms"),
])
def test_row39_bad_session_update(session, params, named):
    conv, rec = session
    conv.update_session(output_modalities=[MultiModality.TEXT], **params)
    err = _error_for(rec, conv.last_id)
    assert "session.updated" not in rec.types(), rec.types()
    assert named in err["message"], err  # names the problem
    manual_transcription(conv, rec, EN)
    _finish_clean(conv, rec)


@pytest.mark.timeout(60)
def test_rejected_update_changes_nothing(session):
    """A rejected session.update is atomic: its valid parts (here: server VAD) do not apply."""
    conv, rec = session
    update(conv, vad=False, language="en")
    rec.wait_type("session.updated", 10)
    update(conv, vad=True, language="en", sample_rate=44100)
    _error_for(rec, conv.last_id)
    send(conv, silence(0.3) + clip_pcm(EN) + silence(1.5), 12800)
    conv.commit()  # still manual mode: the commit transcribes the buffer
    done = rec.wait_type(COMPLETED, 30)
    assert_matches(EN, done["transcript"])
    _finish_clean(conv, rec)
    assert "input_audio_buffer.speech_started" not in rec.types(), rec.types()
    assert rec.types().count("session.updated") == 1, rec.types()


# -- row 40: audio that is not base64 ---------------------------------------------------------
@pytest.mark.timeout(60)
def test_row40_invalid_base64(session):
    conv, rec = session
    update(conv, vad=False, language="en")
    conv.append_audio("not base64!")
    _error_for(rec, conv.last_id)
    manual_transcription(conv, rec, EN)
    _finish_clean(conv, rec)


# -- row 41: an Omni-only event on the ASR model ---------------------------------------------------
@pytest.mark.timeout(60)
def test_row41_create_response(session):
    conv, rec = session
    conv.create_response()
    _error_for(rec, conv.last_id)
    manual_transcription(conv, rec, EN)
    _finish_clean(conv, rec)


# -- unknown event type, missing fields ---------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("event", [
    pytest.param({"event_id": "event_unknown_1", "type": "input_audio_buffer.frobnicate"}, id="unknown_type"),
    pytest.param({"event_id": "event_notype_1"}, id="no_type"),
    pytest.param({"event_id": "event_noaudio_1", "type": "input_audio_buffer.append"}, id="append_no_audio"),
    pytest.param({"event_id": "event_intaudio_1", "type": "input_audio_buffer.append", "audio": 12},
                 id="append_audio_not_string"),
    pytest.param({"event_id": "event_nosession_1", "type": "session.update"}, id="update_no_session"),
])
def test_malformed_event(session, event):
    conv, rec = session
    conv.send_raw(json.dumps(event))
    _error_for(rec, event["event_id"])
    manual_transcription(conv, rec, EN)
    _finish_clean(conv, rec)


# -- audio before session.update: the session.created defaults apply --------------------------------
@pytest.mark.timeout(60)
def test_audio_before_session_update_uses_defaults(session):
    conv, rec = session
    created = rec.events[0]["session"]
    assert created["turn_detection"]["type"] == "server_vad", created
    assert created["input_audio_format"] in ("pcm", "pcm16"), created
    send(conv, silence(0.3) + clip_pcm(EN_LONG) + silence(1.5), 12800)  # burst, no update
    _finish_clean(conv, rec)
    assert not rec.errors(), rec.errors()
    assert "session.updated" not in rec.types(), rec.types()
    assert_matches(EN_LONG, joined(rec.events, "en"), context=rec.types())


# -- manual mode: commit on an empty buffer ------------------------------------------------------
@pytest.mark.timeout(60)
def test_commit_empty_buffer(session):
    conv, rec = session
    update(conv, vad=False, language="en")
    rec.wait_type("session.updated", 10)
    conv.commit()
    _error_for(rec, conv.last_id)
    assert COMMITTED not in rec.types(), rec.types()
    manual_transcription(conv, rec, EN)
    _finish_clean(conv, rec)


# -- manual mode: more than 60 s without commit --------------------------------------------------
@pytest.mark.timeout(90)
def test_manual_buffer_over_60s(session):
    """62.9 s (50 s silence + clip + 10 s silence) appended fast, one second per append."""
    conv, rec = session
    update(conv, vad=False, language="en")
    rec.wait_type("session.updated", 10)
    pcm = silence(50) + clip_pcm(EN) + silence(10)
    ids = []
    for i in range(0, len(pcm), 32000):
        conv.append_audio(b64(pcm[i : i + 32000]))
        ids.append(conv.last_id)
    crossing = ids[60]  # the append that takes the buffer past 60 s
    err = _error_for(rec, crossing, 20)
    assert rec.errors()[0]["error"]["event_id"] == crossing, rec.errors()[0]  # none before it
    assert err["code"], err
    assert "session.finished" not in rec.types() and not rec.of(COMPLETED), rec.types()
    # The session survives: a later commit transcribes what was kept (the clip is inside the 60 s).
    n = len(rec.events)
    conv.commit()
    done = rec.wait_type(COMPLETED, 30, start=n)
    assert_matches(EN, done["transcript"])
    # ... and a fresh buffer after it works as usual.
    n = len(rec.events)
    send(conv, clip_pcm(EN_LONG), 32000)
    conv.commit()
    done = rec.wait_type(COMPLETED, 30, start=n)
    assert not [e for e in rec.events[n:] if e["type"] == "error"], rec.events[n:]
    assert_matches(EN_LONG, done["transcript"])
    _finish_clean(conv, rec)


# -- opus declared, bytes that are not Ogg/Opus ---------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["random", "wav"])
def test_garbage_declared_opus(session, kind):
    conv, rec = session
    update(conv, vad=False, language="en", input_audio_format="opus")
    rec.wait_type("session.updated", 10)
    if kind == "random":
        rnd = random.Random(7)
        data = bytes(rnd.getrandbits(8) for _ in range(8000))
    else:
        data = wav_bytes(clip_pcm(EN)[:32000])
    conv.append_audio(b64(data[:4000]))
    _error_for(rec, conv.last_id)
    conv.append_audio(b64(data[4000:]))
    # Back to PCM in the same session: it works.
    manual_transcription(conv, rec, EN)
    _finish_clean(conv, rec)


# -- a VAD session after errors still has the full event flow --------------------------------------
@pytest.mark.timeout(60)
def test_vad_flow_after_errors(session):
    conv, rec = session
    conv.append_audio("%%%")
    conv.send_raw(json.dumps({"event_id": "event_x", "type": "no.such.event"}))
    conv.update_session(output_modalities=[MultiModality.TEXT],
                        transcription_params=TranscriptionParams(language="en", sample_rate=22050))
    conv.update_session(output_modalities=[MultiModality.TEXT],
                        transcription_params=TranscriptionParams(language="en"))
    send(conv, silence(0.3) + clip_pcm(EN) + silence(1.0), 3200, pace=0.1)
    _finish_clean(conv, rec)
    events = rec.events
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 3, errors
    rest = [events[0]] + [e for e in events[1:] if e["type"] != "error"]
    (text,) = check_vad_flow(rest, 1)
    assert_matches(EN, text)
