"""Issue 9 item 8: a file task resumed after `kill -9` gives the same transcript, word for word,
as an uninterrupted run of the same file (the decoder context and the VAD frame grid are restored
from the saved chunks, not started afresh at the resume point).

Two servers with the same settings (small `checkpoint_s`, short lease): one is killed after its
first progress record and restarted on the same folder; the other runs the task undisturbed.
"""

from __future__ import annotations

import pytest
from dashscope.audio.qwen_asr import QwenTranscription

from tests.files.helpers import (
    QWEN,
    AudioHost,
    chunks_of,
    concat_clips,
    get_doc,
    output_dict,
    task_record,
    wait_until,
)
from tests.support import ServerProcess, sdk_at, wav_bytes

CONFIG = {"server": {"fetch_allow_private": True, "checkpoint_s": 10, "task_lease_s": 5}}
# ~2 minutes of English with pauses: several VAD windows, conditioned one on another.
CLIPS = ["en_jfk_inaugural", "en_librispeech_1995-1837-0001", "en_ljspeech_LJ001-0001",
         "en_beckett", "en_fleurs_000", "en_ldc93s1"] * 2


@pytest.fixture(scope="module")
def audio_url():
    host = AudioHost().start()
    pcm, _reference, seconds = concat_clips(CLIPS, gap_s=1.5)
    yield host.put("resume_context.wav", wav_bytes(pcm)), seconds
    host.stop()


def _run(srv: ServerProcess, url: str, kill_after_first_chunk: bool) -> tuple[dict, list[dict]]:
    with sdk_at(srv):
        r = QwenTranscription.async_call(model=QWEN, file_url=url)
        assert r.status_code == 200, (r.status_code, r.code, r.message)
        task_id = r.output.task_id
    db = srv.workdir / "data" / "voxscope.db"
    if kill_after_first_chunk:
        wait_until(lambda: chunks_of(db, task_id), timeout=300, interval=0.05,
                   what="the first progress record")
        srv.stop(kill=True)
        rec = task_record(db, task_id)
        assert rec is not None and rec["status"] == "RUNNING", ("finished before the kill", rec)
        srv.start()
    with sdk_at(srv):
        w = QwenTranscription.wait(task=task_id, wait_timeout=540)
    assert w.status_code == 200 and w.output.task_status == "SUCCEEDED", output_dict(w)
    return get_doc(w.output["result"]["transcription_url"]), chunks_of(db, task_id)


@pytest.mark.timeout(1200)
def test_kill9_resume_gives_the_uninterrupted_transcript(audio_url):
    url, seconds = audio_url
    plain = ServerProcess(config=CONFIG).start()
    try:
        expected, _ = _run(plain, url, kill_after_first_chunk=False)
    finally:
        plain.stop()
    resumed = ServerProcess(config=CONFIG).start()
    try:
        got, chunks = _run(resumed, url, kill_after_first_chunk=True)
    finally:
        resumed.stop()
    assert {c["attempt"] for c in chunks} == {1, 2}, chunks  # it really was resumed
    resume_s = min(c["start_s"] for c in chunks if c["attempt"] == 2)
    assert resume_s < seconds - 20, ("resumed too late to prove anything", resume_s, seconds)

    want = [s["text"] for s in expected["transcripts"][0]["sentences"]]
    have = [s["text"] for s in got["transcripts"][0]["sentences"]]
    assert have == want, "\n".join(f"{a!r}\n  vs {b!r}" for a, b in zip(want, have, strict=False)
                                   if a != b) or (want, have)
    assert got["transcripts"][0]["text"] == expected["transcripts"][0]["text"]
