"""`Transcription` (Paraformer / Fun-ASR file models, `file_urls`): matrix rows 47-49, accuracy,
the other file models, channel selection.

One server for the module (one in-process worker, `fetch_allow_private` for the test's HTTP host).
Result documents are fetched without credentials and checked against REST §2.6: `properties`,
`transcripts[].content_duration_in_milliseconds`, `sentence_id` from 1, `words` with
`punctuation`, times inside the file and in order.
"""

from __future__ import annotations

import statistics

import pytest
from dashscope.audio.asr import Transcription

from tests.files.helpers import (
    EN_CLIPS,
    MAX_MEAN,
    PARAFORMER,
    ZH_CLIPS,
    check_paraformer_doc,
    check_refused,
    check_task_times,
    clip_pcm,
    duration_s,
    get_doc,
    output_dict,
    stereo_pcm,
)
from tests.support import clip, error_rate, wav_bytes


def _wait(task_id: str, timeout: int = 300) -> dict:
    w = Transcription.wait(task=task_id, wait_timeout=timeout)
    assert w.status_code == 200, (w.status_code, w.code, w.message)
    out = output_dict(w)
    assert out.get("task_id") == task_id, out
    return out


def _succeeded(out: dict, urls: list[str]) -> list[dict]:
    assert out.get("task_status") == "SUCCEEDED", out
    results = out.get("results")
    assert isinstance(results, list) and len(results) == len(urls), out
    assert [r.get("file_url") for r in results] == urls, results
    for r in results:
        assert r.get("subtask_status") == "SUCCEEDED", r
        assert isinstance(r.get("transcription_url"), str) and r["transcription_url"], r
    assert out.get("task_metrics") == {"TOTAL": len(urls), "SUCCEEDED": len(urls), "FAILED": 0}, out
    check_task_times(out)
    return results


@pytest.mark.timeout(300)
def test_row47_two_files_in_order(sdk, audio_host):
    ids = ["zh_funasr_asr_example", "en_librispeech_1995-1837-0001"]
    urls = [audio_host.clip_url(cid) for cid in ids]
    t = Transcription.async_call(model=PARAFORMER, file_urls=urls, language_hints=["zh", "en"])
    assert t.status_code == 200, (t.status_code, t.code, t.message)
    assert t.request_id and t.output.task_id
    assert t.output.task_status in ("PENDING", "RUNNING")
    results = _succeeded(_wait(t.output.task_id), urls)
    for cid, url, res in zip(ids, urls, results, strict=True):
        c = clip(cid)
        tr = check_paraformer_doc(get_doc(res["transcription_url"]), url, duration_s(cid),
                                  sample_rate=c["sample_rate"])[0]
        assert error_rate(c["lang"], c["reference"], tr["text"]) <= 0.2, (cid, tr["text"])


@pytest.mark.timeout(600)
def test_accuracy_all_clips_one_task(sdk, audio_host):
    ids = EN_CLIPS + ZH_CLIPS
    urls = [audio_host.clip_url(cid) for cid in ids]
    t = Transcription.async_call(model=PARAFORMER, file_urls=urls)
    assert t.status_code == 200, (t.status_code, t.code, t.message)
    results = _succeeded(_wait(t.output.task_id, 540), urls)
    rates: dict[str, list[float]] = {"en": [], "zh": []}
    table = []
    for cid, url, res in zip(ids, urls, results, strict=True):
        c = clip(cid)
        tr = check_paraformer_doc(get_doc(res["transcription_url"]), url, duration_s(cid),
                                  sample_rate=c["sample_rate"])[0]
        rate = error_rate(c["lang"], c["reference"], tr["text"])
        rates[c["lang"]].append(rate)
        table.append(f"{cid:32s} {rate:6.1%} {tr['text']}")
    print("\n" + "\n".join(table))
    for lang, values in rates.items():
        mean = statistics.mean(values)
        print(f"mean {lang}: {mean:.1%} over {len(values)} clips")
        assert mean <= MAX_MEAN[lang], (lang, mean, table)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("model", ["paraformer-v1", "fun-asr"])
def test_other_file_models(sdk, audio_host, model):
    cid = "en_librispeech_1995-1837-0001"
    url = audio_host.clip_url(cid)
    t = Transcription.async_call(model=model, file_urls=[url])
    assert t.status_code == 200, (model, t.status_code, t.code, t.message)
    results = _succeeded(_wait(t.output.task_id), [url])
    tr = check_paraformer_doc(get_doc(results[0]["transcription_url"]), url, duration_s(cid))[0]
    assert error_rate("en", clip(cid)["reference"], tr["text"]) <= 0.2, tr["text"]


def test_row48_diarization_refused_clearly(sdk, audio_host):
    """No local diarization model: refused at submit with a 400 that says so (row 48's option)."""
    url = audio_host.clip_url("en_ldc93s1")
    t = Transcription.async_call(model=PARAFORMER, file_urls=[url], diarization_enabled=True,
                                 speaker_count=2)
    check_refused(t, statuses=(400,))
    assert "diariz" in t.message.lower(), t.message


@pytest.mark.timeout(240)
def test_row49_one_good_one_unreachable(sdk, srv, audio_host):
    good_id = "en_librispeech_1995-1837-0001"
    good = audio_host.clip_url(good_id)
    bad = "https://127.0.0.1:9/missing.wav"
    t = Transcription.async_call(model=PARAFORMER, file_urls=[good, bad])
    assert t.status_code == 200, (t.status_code, t.code, t.message)
    out = _wait(t.output.task_id)
    assert out.get("task_status") in ("SUCCEEDED", "FAILED"), out
    results = out.get("results")
    assert isinstance(results, list) and [r.get("file_url") for r in results] == [good, bad], out
    ok, failed = results
    assert ok.get("subtask_status") == "SUCCEEDED", ok
    tr = check_paraformer_doc(get_doc(ok["transcription_url"]), good, duration_s(good_id))[0]
    assert error_rate("en", clip(good_id)["reference"], tr["text"]) <= 0.2, tr["text"]
    assert failed.get("subtask_status") == "FAILED", failed
    assert isinstance(failed.get("code"), str) and failed["code"], failed
    assert isinstance(failed.get("message"), str) and failed["message"], failed
    assert not failed.get("transcription_url"), failed
    assert out.get("task_metrics") == {"TOTAL": 2, "SUCCEEDED": 1, "FAILED": 1}, out
    assert srv.alive() and srv.health()["status"] == "ok"


@pytest.mark.timeout(300)
def test_channel_selection_with_string_ids(sdk, audio_host):
    """channel_id given as numeric strings (a Java sample's form) selects the tracks."""
    left, right = "en_beckett", "en_ljspeech_LJ001-0001"
    data = wav_bytes(stereo_pcm(clip_pcm(left), clip_pcm(right)), 16000, channels=2)
    url = audio_host.put("paraformer_stereo.wav", data)
    length = max(duration_s(left), duration_s(right))
    both = Transcription.async_call(model=PARAFORMER, file_urls=[url], channel_id=["0", "1"])
    second = Transcription.async_call(model=PARAFORMER, file_urls=[url], channel_id=["1"])
    assert both.status_code == 200 and second.status_code == 200, (both.message, second.message)

    res = _succeeded(_wait(both.output.task_id), [url])[0]
    trs = check_paraformer_doc(get_doc(res["transcription_url"]), url, length, sample_rate=16000,
                               channels=(0, 1))
    for ch, cid, other in ((0, left, right), (1, right, left)):
        assert error_rate("en", clip(cid)["reference"], trs[ch]["text"]) <= 0.25, (ch, trs[ch])
        assert error_rate("en", clip(other)["reference"], trs[ch]["text"]) >= 0.7, (ch, trs[ch])

    res = _succeeded(_wait(second.output.task_id), [url])[0]
    only = check_paraformer_doc(get_doc(res["transcription_url"]), url, length, channels=(1,),
                                all_channels=(0, 1))
    assert error_rate("en", clip(right)["reference"], only[1]["text"]) <= 0.25, only[1]["text"]
