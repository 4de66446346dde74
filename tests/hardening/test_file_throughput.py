"""Issue 12 item 3 (file throughput): what made file windows cheaper (tails after Whisper's last
timestamp encoded with 5 s of padding instead of 30 s; a batch's full windows encoded one at a
time on CPU) keeps every word. A real `voxscope serve`, a long file of many utterances with 1 s
pauses, the official `dashscope` SDK.

Speed itself is measured by benchmarks/bench_file_throughput.py; here only what does not depend
on machine speed: the transcript holds the reference's words, and sentence and word times run
forward.
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from dashscope.audio.qwen_asr import QwenTranscription

from tests.files.helpers import EN_CLIPS, QWEN, AudioHost, concat_clips, get_doc, output_dict
from tests.support import ServerProcess, error_rate, norm_words, sdk_at, wav_bytes

# one replica: this module checks a batch of full windows on one model (with two, they
# decode one per decode, two at once: tests/hardening/test_parallel_files.py)
CONFIG = {"server": {"fetch_allow_private": True, "model_workers": 1}}


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(config=CONFIG).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def long_file():
    # ~3 minutes: every English clip twice, 1 s pauses (many utterances, 7-8 windows, tails)
    host = AudioHost().start()
    pcm, reference, seconds = concat_clips(EN_CLIPS * 2, gap_s=1.0)
    yield host.put("many_utterances.wav", wav_bytes(pcm)), reference, seconds
    host.stop()


@pytest.mark.timeout(900)
def test_long_file_task_keeps_every_word_in_order(server, long_file):
    url, reference, seconds = long_file
    with sdk_at(server):
        r = QwenTranscription.async_call(model=QWEN, file_url=url, enable_words=True)
        assert r.status_code == 200, (r.status_code, r.code, r.message)
        w = QwenTranscription.wait(task=r.output.task_id, wait_timeout=840)
    assert w.status_code == 200 and w.output.task_status == "SUCCEEDED", output_dict(w)
    doc = get_doc(w.output["result"]["transcription_url"])

    # Nothing lost: the reference's words are there (as many times as said), few errors.
    transcript = doc["transcripts"][0]
    want, have = Counter(norm_words(reference)), Counter(norm_words(transcript["text"]))
    missing = sum((want - have).values())
    assert missing <= 0.08 * sum(want.values()), (missing, want - have)
    assert error_rate("en", reference, transcript["text"]) <= 0.08, transcript["text"]

    # Times run forward and stay inside the file.
    sentences = transcript["sentences"]
    assert len(sentences) >= len(EN_CLIPS), sentences
    last = 0
    for s in sentences:
        assert last <= s["begin_time"] < s["end_time"] <= seconds * 1000 + 500, (last, s)
        words = s["words"]
        assert words, s
        for a, b in zip(words, words[1:], strict=False):
            assert a["begin_time"] <= b["begin_time"], (a, b)
        assert s["begin_time"] <= words[0]["begin_time"] and words[-1]["end_time"] <= (
            s["end_time"] + 1), s
        last = s["end_time"]


def _hwm_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), MB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.timeout(600)
def test_a_batch_of_full_windows_does_not_raise_peak_memory(server):
    # ~2 minutes in one sync request: four 29 s windows go to the model as one batch. Encoded
    # together on CPU their attention buffers raised the server's peak RSS by ~320 MB; encoded
    # one at a time (then decoded as a batch) by a few tens of MB.
    pcm, _reference, seconds = concat_clips(EN_CLIPS + ["en_beckett", "en_fleurs_000"], gap_s=1.0)
    assert 100 < seconds < 150, seconds
    assert server.proc is not None
    warm = {"file": ("w.wav", wav_bytes(concat_clips(["en_ldc93s1"], gap_s=0.5)[0]), "audio/wav")}
    r = httpx.post(server.http + "/v1/audio/transcriptions", data={"model": "whisper-1"},
                   files=warm, timeout=300)
    assert r.status_code == 200, r.text
    before = _hwm_mb(server.proc.pid)
    files = {"file": ("long.wav", wav_bytes(pcm), "audio/wav")}
    r = httpx.post(server.http + "/v1/audio/transcriptions", data={"model": "whisper-1"},
                   files=files, timeout=540)
    assert r.status_code == 200, r.text
    assert len(r.json()["text"].split()) > 150, r.text
    grew = _hwm_mb(server.proc.pid) - before
    assert grew < 150, f"peak RSS grew by {grew:.0f} MB for one batch of full windows"
