"""Durability: accepted tasks survive a restart (row 55) and a `kill -9` mid-task resumes from the
progress records without redoing finished chunks.

The server keeps progress every `checkpoint_s` = 20 s of audio and a running task whose worker
stops renewing its lease is taken over after `task_lease_s` = 5 s. The long file is ~3 minutes of
English clips with silence between them (numpy), served over HTTP. The proof comes from the
server's own records (`<workdir>/data/voxscope.db`, read with sqlite3): the chunks written by
attempt 1 before the kill are still there unchanged, attempt 2 starts exactly where attempt 1's
last chunk ended, no two chunks of a channel overlap, and the transcript is complete (WER).
"""

from __future__ import annotations

import time

import pytest
from dashscope.audio.qwen_asr import QwenTranscription

from tests.files.helpers import (
    QWEN,
    check_chunks_once,
    check_qwen_doc,
    chunks_of,
    concat_clips,
    get_doc,
    output_dict,
    task_record,
    wait_until,
)
from tests.support import ServerProcess, clip, error_rate, sdk_at, wav_bytes

CHECKPOINT_S = 20
WINDOW_S = 30  # Whisper's window: a checkpoint may come up to one window late
CONFIG = {"server": {"fetch_allow_private": True, "checkpoint_s": CHECKPOINT_S, "task_lease_s": 5}}
STATE: dict[str, list[dict]] = {}
LONG_CLIPS = ["en_jfk_inaugural", "en_librispeech_1995-1837-0001", "en_ljspeech_LJ001-0001",
              "en_beckett", "en_fleurs_000", "en_ldc93s1"] * 3


@pytest.fixture(scope="module")
def srv():
    s = ServerProcess(config=CONFIG).start()
    yield s
    s.stop()


def _db(srv):
    return srv.workdir / "data" / "voxscope.db"


@pytest.mark.timeout(300)
def test_row55_sigterm_restart_completes(srv, audio_host):
    """Submit, stop the server gracefully while the task is queued or running, start it again on
    the same folder and port: `wait()` on the same id gives SUCCEEDED."""
    cid = "en_jfk_inaugural"
    url = audio_host.clip_url(cid)
    with sdk_at(srv):
        r = QwenTranscription.async_call(model=QWEN, file_url=url)
        assert r.status_code == 200, (r.status_code, r.code, r.message)
        task_id = r.output.task_id
        time.sleep(0.5)
    srv.stop()  # SIGTERM
    srv.start()
    with sdk_at(srv):
        w = QwenTranscription.wait(task=task_id, wait_timeout=240)
        assert w.status_code == 200 and w.output.task_status == "SUCCEEDED", output_dict(w)
        doc = get_doc(w.output["result"]["transcription_url"])
    text = doc["transcripts"][0]["text"]
    assert error_rate("en", clip(cid)["reference"], text) <= 0.15, text


@pytest.mark.timeout(600)
def test_kill9_mid_task_resumes_without_redoing_chunks(srv, audio_host):
    pcm, reference, seconds = concat_clips(LONG_CLIPS, gap_s=1.5)
    assert 150 < seconds < 240, seconds
    url = audio_host.put("long_durability.wav", wav_bytes(pcm))
    db = _db(srv)

    with sdk_at(srv):
        r = QwenTranscription.async_call(model=QWEN, file_url=url)
        assert r.status_code == 200, (r.status_code, r.code, r.message)
        task_id = r.output.task_id

    first = wait_until(lambda: chunks_of(db, task_id), timeout=240, interval=0.05,
                       what="the first progress record")
    srv.stop(kill=True)  # kill -9 the whole process group, mid-task
    before = chunks_of(db, task_id)  # everything attempt 1 managed to persist
    assert len(before) >= len(first) >= 1
    assert all(c["attempt"] == 1 for c in before), before
    rec = task_record(db, task_id)
    assert rec is not None and rec["status"] == "RUNNING", rec
    done_s = max(c["end_s"] for c in before)
    assert done_s < seconds - 10, ("the task was (nearly) finished before the kill; the machine is "
                                   "too fast for this test's checkpoint spacing", done_s, seconds)

    srv.start()  # same workdir, same port; the client does not resubmit
    with sdk_at(srv):
        w = QwenTranscription.wait(task=task_id, wait_timeout=480)
        assert w.status_code == 200 and w.output.task_status == "SUCCEEDED", output_dict(w)
        doc = get_doc(w.output["result"]["transcription_url"])

    after = chunks_of(db, task_id)
    STATE["chunks"] = after
    key = ("file_index", "channel", "seq", "start_s", "end_s", "attempt", "worker")
    kept = {tuple(c[k] for k in key) for c in after}
    for c in before:
        assert tuple(c[k] for k in key) in kept, ("an attempt-1 chunk was replaced or redone", c)
    groups = check_chunks_once(after)
    assert list(groups) == [(0, 0)], list(groups)
    chunks = groups[(0, 0)]
    assert [c["seq"] for c in chunks] == sorted({c["seq"] for c in chunks})
    new = [c for c in chunks if c["attempt"] != 1]
    assert new, "nothing was done after the restart?"
    assert all(c["attempt"] == 2 for c in new), new
    assert min(c["start_s"] for c in new) == pytest.approx(done_s, abs=1e-3), (done_s, new)
    assert min(c["seq"] for c in new) == max(c["seq"] for c in before) + 1
    assert max(c["end_s"] for c in chunks) >= seconds - 2.0, (chunks[-1], seconds)

    rec = task_record(db, task_id)
    assert rec["status"] == "SUCCEEDED" and rec["attempts"] == 2, rec
    assert rec["progress_s"] == pytest.approx(rec["duration_s"], abs=1.0), rec
    assert rec["duration_s"] == pytest.approx(seconds, abs=0.5), rec

    tr = check_qwen_doc(doc, url, seconds)[0]
    wer = error_rate("en", reference, tr["text"])
    print(f"\nchunks: {[(c['seq'], c['start_s'], c['end_s'], c['attempt']) for c in chunks]}\n"
          f"WER {wer:.1%} over {seconds:.0f} s")
    assert wer <= 0.12, tr["text"]
    assert srv.health()["status"] == "ok"
    # The download of attempt 1 was reused: the file was fetched once.
    fetched = [p for m, p in audio_host.requests if m == "GET" and p.endswith("long_durability.wav")]
    assert len(fetched) == 1, fetched


def test_progress_is_persisted_every_checkpoint(srv):
    """`checkpoint_s` bounds the work a kill can lose: no chunk of the durability task (attempt 1
    or 2) spans much more than `checkpoint_s` of audio (one Whisper window of slack)."""
    chunks = STATE.get("chunks")
    if not chunks:
        pytest.skip("needs the chunk records of test_kill9_mid_task_resumes_without_redoing_chunks")
    spans = [(c["seq"], c["attempt"], round(c["end_s"] - c["start_s"], 1)) for c in chunks]
    assert all(span <= CHECKPOINT_S + WINDOW_S for _, _, span in spans), (
        "progress was not persisted every checkpoint_s of audio", CHECKPOINT_S, spans)
