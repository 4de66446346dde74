"""Inference WebSocket with the official SDK (1.x `Recognition`): matrix rows 1-13, 15-17, 20-22.

Every test drives `dashscope.audio.asr.Recognition` (SDK 2.0.2) against one real `voxscope serve`
process (module fixture `server`: idle timeout 8 s, heartbeat interval 2 s) on real speech clips.
Row numbers refer to shared/protocol/sdk-compat-matrix.md.
"""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import pytest
from dashscope.audio.asr import Recognition
from dashscope.common.error import InvalidParameter

from tests.protocols.inference_helpers import (
    CJK,
    HEX32,
    SENTENCE_PUNCTUATION,
    Recorder,
    StreamRun,
    assert_matches,
    check_call_result,
    check_failed_call,
    check_streamed_run,
    good_call,
    send_stream,
    start_recognition,
    stream_recognition,
    write,
)
from tests.support import clip, clip_pcm, error_rate, sdk_at, silence_pcm, trim_silence, wav_bytes

EN = "en_ldc93s1"  # 2.9 s
ZH = "zh_funasr_asr_example"  # 5.5 s


# -- rows 1, 2, 16: Recognition.call(file) ---------------------------------------------------------
def test_row01_call_fun_asr_realtime_wav(dashscope_at):
    c = clip(ZH)
    r = Recognition(model="fun-asr-realtime", format="wav", sample_rate=16000, callback=None)
    res = r.call(str(c["file"]))
    check_call_result(res, r, ZH)
    begins = [s["begin_time"] for s in res.get_sentence()]
    assert begins == sorted(begins)  # in order


def test_row02_call_paraformer_v2_language_hints(dashscope_at):
    c = clip(ZH)
    r = Recognition(model="paraformer-realtime-v2", format="wav", sample_rate=16000,
                    language_hints=["zh", "en"], callback=None)
    res = r.call(str(c["file"]))
    check_call_result(res, r, ZH)


def test_row16_workspace_and_data_inspection_headers(dashscope_at, monkeypatch):
    c = clip(EN)
    monkeypatch.setenv("DASHSCOPE_DISABLE_DATA_INSPECTION", "false")  # -> X-DashScope-DataInspection
    r = Recognition(model="fun-asr-realtime", format="wav", sample_rate=16000, callback=None,
                    workspace="ws1")
    res = r.call(str(c["file"]))
    check_call_result(res, r, EN)


# -- rows 3, 4, 5: callback mode, paced and burst --------------------------------------------------
@pytest.fixture(scope="module")
def paced_pcm_run(server):
    """Row 3's run, shared with row 5 (which compares its text)."""
    with sdk_at(server):
        return stream_recognition(clip_pcm(EN), chunk=3200, pace=0.1)


@pytest.mark.timeout(60)
def test_row03_callback_paced_pcm(paced_pcm_run):
    check_streamed_run(paced_pcm_run)
    text = paced_pcm_run.recorder.final_text()
    assert_matches(EN, text)


@pytest.mark.timeout(60)
def test_row04_callback_paced_wav_file_bytes(dashscope_at):
    c = clip(EN)
    data = c["file"].read_bytes()
    assert data[:4] == b"RIFF"  # the header goes out in the first frame, as in the seed sample
    run = stream_recognition(data, fmt="wav", chunk=3200, pace=0.1)
    check_streamed_run(run)
    text = run.recorder.final_text()
    assert_matches(EN, text)


@pytest.mark.timeout(60)
def test_row05_callback_burst_pcm(dashscope_at, paced_pcm_run):
    run = stream_recognition(clip_pcm(EN), chunk=12800, pace=None)
    check_streamed_run(run)
    text = run.recorder.final_text()
    paced = paced_pcm_run.recorder.final_text()
    assert_matches(EN, text)
    # As good as #3: a burst's final and a paced one may be decoded in different windows (short
    # or full, depending on which previews were shown before the close), and two right-ish texts
    # can differ by more than either differs from the reference (stop 20's CI: "in greasy
    # washwater" paced, "and greasy wash for her" burst, 0.44 apart). So each against the
    # reference: the burst path may not be worse than the paced one by more than 0.25.
    reference = clip(EN)["reference"]
    assert error_rate("en", reference, text) <= error_rate("en", reference, paced) + 0.25, \
        (paced, text)


# -- rows 6, 7: parameters -------------------------------------------------------------------------
ROW6_PARAMS = dict(semantic_punctuation_enabled=False, multi_threshold_mode_enabled=True,
                   disfluency_removal_enabled=True, punctuation_prediction_enabled=True,
                   speech_noise_threshold=0.1)


def _two_clips_one_second_apart() -> tuple[bytes, str]:
    a, b = clip("zh_funasr_asr_example"), clip("zh_cosyvoice_zero_shot_prompt")
    pcm = trim_silence(clip_pcm(a["id"])) + silence_pcm(1.0) + trim_silence(clip_pcm(b["id"]))
    return pcm, a["reference"] + b["reference"]


@pytest.mark.timeout(90)
def test_row06_parameters_accepted_and_pause_splits_at_800ms(dashscope_at):
    pcm, reference = _two_clips_one_second_apart()
    # All of row 6's parameters, max_sentence_silence=800: the 1.0 s pause ends a sentence.
    run = stream_recognition(pcm, chunk=3200, pace=None, max_sentence_silence=800, **ROW6_PARAMS)
    check_streamed_run(run)
    finals = run.recorder.finals()
    assert len(finals) >= 2, run.recorder.summary()
    assert error_rate("zh", reference, run.recorder.final_text()) <= 0.35, run.recorder.summary()
    # Control: the default 1300 ms does not end a sentence at a 1.0 s pause, so the parameter is
    # what split the audio above.
    merged = stream_recognition(pcm, chunk=3200, pace=None)
    check_streamed_run(merged)
    assert len(merged.recorder.finals()) == 1, merged.recorder.summary()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("clip_id", ["en_beckett", ZH])
def test_row07_semantic_punctuation(dashscope_at, clip_id):
    run = stream_recognition(clip_pcm(clip_id), chunk=3200, pace=None, semantic_punctuation_enabled=True)
    # A sentence split at punctuation yields further finals without partials of their own.
    check_streamed_run(run, partials_per_sentence=False)
    assert run.recorder.partials(), run.recorder.summary()
    finals = run.recorder.finals()
    for f in finals:
        assert f.sentence["text"].rstrip()[-1] in SENTENCE_PUNCTUATION, run.recorder.summary()
    assert_matches(clip_id, run.recorder.final_text(), run.recorder.summary())


# -- rows 8, 9: heartbeat --------------------------------------------------------------------------
# The module's server ends a task after 8 s without speech (the real service: 60 s), so the
# "70 s of silence" of rows 8/9 becomes ~10 s of paced silent PCM: longer than the idle timeout.
SILENT_SECONDS = 10.5


@pytest.mark.timeout(60)
def test_row08_heartbeat_keeps_silent_task_alive(dashscope_at):
    cb = Recorder()
    r = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000, callback=cb,
                    heartbeat=True)
    start_recognition(r, cb)
    send_stream(r, silence_pcm(SILENT_SECONDS), chunk=3200, pace=0.1)
    during_silence = cb.summary()
    send_stream(r, clip_pcm(EN), chunk=3200, pace=0.1)
    r.stop()
    kinds = cb.kinds()
    assert "error" not in kinds, cb.summary()
    # Keep-alive results never reach on_event (the SDK drops those flagged heartbeat: true; an
    # unflagged one would show up here as an empty result). Nothing was said during the silence.
    assert "event" not in during_silence, during_silence
    assert all(e.sentence["text"] for e in cb.events()), cb.summary()
    assert kinds.count("complete") == 1 and kinds[-1] == "close", cb.summary()
    text = cb.final_text()
    assert_matches(EN, text, cb.summary())
    # the speech came after the silence: its timestamps say so
    assert cb.finals()[0].sentence["begin_time"] >= (SILENT_SECONDS - 0.5) * 1000, cb.summary()


@pytest.mark.timeout(60)
def test_row09_no_heartbeat_silence_times_out(dashscope_at):
    cb = Recorder()
    r = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000, callback=cb)
    start_recognition(r, cb)
    start = time.monotonic()
    chunk = silence_pcm(0.1)
    # Paced silent audio until the failure. (SDK 2.0.2 reads server events only while it has audio
    # to send, so a live client keeps sending.)
    with contextlib.suppress(InvalidParameter):  # the SDK refuses audio once the task has failed
        while time.monotonic() - start < 25 and not cb.done.is_set():
            r.send_audio_frame(chunk)
            time.sleep(0.1)
    assert cb.done.wait(5), cb.summary()
    assert wait_for_close(cb), cb.summary()
    errors = cb.errors()
    assert len(errors) == 1, cb.summary()
    err = errors[0]
    assert err.status_code == 44, cb.summary()
    assert isinstance(err.code, str) and err.code, cb.summary()
    assert isinstance(err.message, str) and err.message, cb.summary()
    t_err = next(c.t for c in cb.calls if c.kind == "error")
    assert 6 <= t_err - start <= 20, t_err - start  # the server's idle timeout is 8 s
    kinds = cb.kinds()
    assert kinds[-1] == "close" and "complete" not in kinds and "event" not in kinds, cb.summary()
    with pytest.raises(InvalidParameter):
        r.send_audio_frame(chunk)


def wait_for_close(cb: Recorder, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "close" in cb.kinds():
            return True
        time.sleep(0.05)
    return False


# -- row 10: the SDK's silence timer ---------------------------------------------------------------
@pytest.mark.timeout(60)
def test_row10_sdk_silence_timer_finishes_task(dashscope_at, monkeypatch):
    # The SDK sends finish-task after SILENCE_TIMEOUT_S (23 s) without queued audio; 3 s here.
    monkeypatch.setattr(Recognition, "SILENCE_TIMEOUT_S", 3)
    cb = Recorder()
    r = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000, callback=cb)
    start_recognition(r, cb)
    r.send_audio_frame(clip_pcm(EN)[:3200])
    sent = time.monotonic()
    assert cb.done.wait(15), cb.summary()
    t_done = next(c.t for c in cb.calls if c.kind in ("complete", "error"))
    time.sleep(0.5)
    kinds = cb.kinds()
    assert kinds == ["open", "complete"], cb.summary()  # no on_error, no on_close
    assert 2.5 <= t_done - sent <= 10, t_done - sent
    with pytest.raises(InvalidParameter, match="stopped"):
        r.stop()


# -- row 11: update_context -> continue-task -------------------------------------------------------
@pytest.mark.timeout(60)
def test_row11_update_context(dashscope_at):
    pcm = clip_pcm(EN)
    cb = Recorder()
    r = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000, callback=cb)
    start_recognition(r, cb)
    half = len(pcm) // 2 // 3200 * 3200
    send_stream(r, pcm[:half], chunk=3200, pace=0.1)
    r.update_context({"messages": [{"role": "system", "content": "Bailian"}]})
    send_stream(r, pcm[half:], chunk=3200, pace=0.1)
    t0 = time.monotonic()
    r.stop()
    check_streamed_run(StreamRun(r, cb, t0, time.monotonic()))
    assert_matches(EN, cb.final_text(), cb.summary())


# -- row 12: one Recognition object, two tasks -----------------------------------------------------
@pytest.mark.timeout(90)
def test_row12_same_object_twice(dashscope_at):
    cb = Recorder()
    r = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000, callback=cb)
    ids = []
    for _ in range(2):
        cb.reset()
        start_recognition(r, cb)
        send_stream(r, clip_pcm(EN), chunk=3200, pace=0.1)
        t0 = time.monotonic()
        r.stop()
        check_streamed_run(StreamRun(r, cb, t0, time.monotonic()))
        assert_matches(EN, cb.final_text(), cb.summary())
        ids.append(r.get_last_request_id())
    assert HEX32.fullmatch(ids[0]) and ids[0] == ids[1], ids


# -- row 13: start() then stop() with no audio -----------------------------------------------------
@pytest.mark.timeout(30)
def test_row13_start_stop_without_audio(dashscope_at):
    cb = Recorder()
    r = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000, callback=cb)
    start_recognition(r, cb)
    r.stop()
    assert cb.kinds() == ["open", "complete", "close"], cb.summary()


# -- row 15: phrase_id -----------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_row15_phrase_id_answered_clearly(dashscope_at):
    c = clip(EN)
    r = Recognition(model="fun-asr-realtime", format="wav", sample_rate=16000, callback=None)
    res = r.call(str(c["file"]), phrase_id="any")
    if res.status_code == 200:
        check_call_result(res, r, EN)
    else:
        check_failed_call(res, r, "phrase", "resource", "asr_phrase")
    good_call()


# -- row 17: 8 kHz models --------------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("model", ["paraformer-realtime-8k-v2", "fun-asr-flash-8k-realtime"])
def test_row17_8k_models(dashscope_at, tmp_path, model):
    # the 8 kHz models are Chinese-only: a Mandarin clip resampled to 8 kHz
    path = write(tmp_path, "clip8k.pcm", clip_pcm(ZH, 8000))
    r = Recognition(model=model, format="pcm", sample_rate=8000, callback=None)
    check_call_result(r.call(path), r, ZH)


# -- row 20: unknown model -------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_row20_unknown_model_call(dashscope_at):
    r = Recognition(model="no-such-model", format="wav", sample_rate=16000, callback=None)
    res = r.call(str(clip(EN)["file"]))
    check_failed_call(res, r, "no-such-model", "model")
    good_call()


@pytest.mark.timeout(30)
def test_row20_unknown_model_callback(dashscope_at):
    cb = Recorder()
    r = Recognition(model="no-such-model", format="pcm", sample_rate=16000, callback=cb)
    r.start()
    assert cb.done.wait(10), cb.summary()
    assert wait_for_close(cb), cb.summary()
    time.sleep(0.3)
    assert cb.kinds() == ["open", "error", "close"], cb.summary()
    err = cb.errors()[0]
    assert err.status_code == 44 and err.code and err.message, cb.summary()
    assert "model" in err.message.lower(), err.message
    with pytest.raises(InvalidParameter):
        r.send_audio_frame(clip_pcm(EN)[:3200])
    good_call()


# -- row 21: audio the model does not take ---------------------------------------------------------
@pytest.mark.timeout(30)
def test_row21_sample_rate_the_model_does_not_take(dashscope_at, tmp_path):
    path = write(tmp_path, "clip48k.pcm", clip_pcm(EN, 48000))
    r = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=48000, callback=None)
    check_failed_call(r.call(path), r, "sample rate", "sample_rate", "48000")
    good_call()


@pytest.mark.timeout(60)
def test_row21_8k_model_refuses_16k_and_takes_8k(dashscope_at, tmp_path):
    r16 = Recognition(model="paraformer-realtime-8k-v2", format="pcm", sample_rate=16000, callback=None)
    check_failed_call(r16.call(write(tmp_path, "clip16k.pcm", clip_pcm(ZH, 16000))), r16,
                      "sample rate", "sample_rate", "16000", "8000")
    r8 = Recognition(model="paraformer-realtime-8k-v2", format="pcm", sample_rate=8000, callback=None)
    check_call_result(r8.call(write(tmp_path, "clip8k.pcm", clip_pcm(ZH, 8000))), r8, ZH)


@pytest.mark.timeout(30)
def test_row21_wav_declared_as_mp3(dashscope_at):
    r = Recognition(model="fun-asr-realtime", format="mp3", sample_rate=16000, callback=None)
    check_failed_call(r.call(str(clip(EN)["file"])), r, "wav", "riff")
    good_call()


@pytest.mark.timeout(30)
def test_row21_stereo_wav(dashscope_at, tmp_path):
    mono = clip_pcm(EN)
    x = np.frombuffer(mono, "<i2")
    stereo = np.stack([x, x[::-1]], axis=1).astype("<i2").tobytes()  # interleaved L/R
    path = write(tmp_path, "stereo.wav", wav_bytes(stereo, 16000, channels=2))
    r = Recognition(model="fun-asr-realtime", format="wav", sample_rate=16000, callback=None)
    check_failed_call(r.call(path), r, "mono", "channel", "stereo")
    good_call()


# -- row 22: two recognitions at once --------------------------------------------------------------
@pytest.mark.timeout(90)
def test_row22_concurrent_recognitions_not_mixed(dashscope_at):
    runs: dict[str, StreamRun] = {}
    failures: list[BaseException] = []

    def one(clip_id: str) -> None:
        try:
            runs[clip_id] = stream_recognition(clip_pcm(clip_id), chunk=3200, pace=0.1)
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=one, args=(cid,)) for cid in (EN, ZH)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures
    assert set(runs) == {EN, ZH}
    for run in runs.values():
        check_streamed_run(run)
    en_text, zh_text = runs[EN].recorder.final_text(), runs[ZH].recorder.final_text()
    assert_matches(EN, en_text)
    assert_matches(ZH, zh_text)
    # nothing of one stream in the other's results (partials included)
    assert not any(CJK.search(e.sentence["text"]) for e in runs[EN].recorder.events()), en_text
    assert not any(any(w in e.sentence["text"].lower() for w in ("suit", "wash", "year"))
                   for e in runs[ZH].recorder.events()), zh_text
    assert runs[EN].recognition.get_last_request_id() != runs[ZH].recognition.get_last_request_id()
