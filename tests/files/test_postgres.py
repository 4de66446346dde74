"""PostgreSQL as the database (the many-machines setup): a real cluster started by the test, a
server whose `database_url` points at it; a file task, its progress records and a vocabulary all
live in PostgreSQL. Skipped (with the reason) when the PostgreSQL server binaries are missing."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from dashscope.audio.asr import VocabularyService
from dashscope.audio.qwen_asr import QwenTranscription

from tests.files.helpers import QWEN, get_doc, output_dict
from tests.support import ServerProcess, clip, error_rate, free_port, sdk_at

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run it as the `postgres` user when we are root.
    if os.geteuid() == 0 and shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="module")
def pg_url():
    if not BIN:
        pytest.skip("PostgreSQL server binaries not installed (Debian package postgresql)")
    bin_dir = BIN[-1]
    root = Path(tempfile.mkdtemp(prefix="voxscope-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()
    subprocess.run(_as_postgres([f"{bin_dir}/initdb", "-D", str(root / "data"), "-A", "trust",
                                 "-U", "postgres"]), check=True, capture_output=True)
    subprocess.run(_as_postgres([f"{bin_dir}/pg_ctl", "-D", str(root / "data"), "-w", "-l",
                                 str(root / "log"), "-o",
                                 f"-k {root} -p {port} -c listen_addresses=''", "start"]),
                   check=True, capture_output=True)
    yield f"postgresql+psycopg://postgres@/postgres?host={root}&port={port}"
    subprocess.run(_as_postgres([f"{bin_dir}/pg_ctl", "-D", str(root / "data"), "-m", "fast",
                                 "stop"]), capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def srv(pg_url):
    s = ServerProcess(config={"server": {"fetch_allow_private": True, "database_url": pg_url,
                                         "checkpoint_s": 1}}).start()
    yield s
    s.stop()


def test_task_and_vocabulary_stored_in_postgres(srv, pg_url, audio_host):
    import psycopg

    with sdk_at(srv):
        vid = VocabularyService().create_vocabulary(target_model="fun-asr-realtime",
                                                    prefix="pg", vocabulary=[{"text": "达摩院"}])
        sub = QwenTranscription.async_call(model=QWEN,
                                           file_url=audio_host.clip_url("en_jfk_inaugural"))
        done = output_dict(QwenTranscription.wait(task=sub.output.task_id, wait_timeout=240))
    assert done["task_status"] == "SUCCEEDED", done
    doc = get_doc(done["result"]["transcription_url"])
    ref = clip("en_jfk_inaugural")["reference"]
    assert error_rate("en", ref, doc["transcripts"][0]["text"]) <= 0.12, doc
    conninfo = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        status = conn.execute("select status, attempts from tasks where id = %s",
                              (sub.output.task_id,)).fetchone()
        chunks = conn.execute("select count(*) from task_chunks where task_id = %s",
                              (sub.output.task_id,)).fetchone()[0]
        vocab = conn.execute("select prefix from vocabularies where id = %s", (vid,)).fetchone()
    assert status == ("SUCCEEDED", 1)
    assert chunks >= 1
    assert vocab == ("pg",)
    # The SQLite default was not used on the side.
    assert not (srv.workdir / "data" / "voxscope.db").exists()
