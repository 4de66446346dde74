"""Issue 9 item 11: the data folder is private to the server's user.

A real server (its data folder created beforehand with the usual 0755, as an older voxscope or
an admin's `mkdir` left it) takes an SDK upload, runs a file task on it and answers a sync call;
then the folder must be 0700 and every folder and file under it (databases and their SQLite
side files, queue, secret.key, uploads, work files) closed to group and others.
"""

from __future__ import annotations

import os
import stat

import pytest
from dashscope import MultiModalConversation
from dashscope.audio.asr import Transcription
from dashscope.utils.oss_utils import OssUtils

from tests.conftest import FAST_ENV
from tests.support import ServerProcess, clip, sdk_at

CLIP = "en_ldc93s1"  # 3 s: the file task and the sync call stay short


@pytest.fixture(scope="module")
def srv():
    server = ServerProcess(env=FAST_ENV)
    data = server.workdir / "data"
    data.mkdir()
    os.chmod(data, 0o755)  # an existing, world-readable data folder
    server.start()
    yield server
    server.stop()


def _modes(root) -> dict[str, int]:
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = stat.S_IMODE(os.lstat(path).st_mode)
    return out


@pytest.mark.timeout(400)
def test_data_folder_and_files_are_private(srv):
    path = str(clip(CLIP)["file"])
    with sdk_at(srv) as dashscope:
        url, _ = OssUtils.upload(model="paraformer-v2", file_path=path, api_key=dashscope.api_key)
        assert url and url.startswith("oss://"), url
        task = Transcription.async_call(model="paraformer-v2", file_urls=[url])
        assert task.status_code == 200, (task.code, task.message)
        done = Transcription.wait(task=task.output.task_id, wait_timeout=300)
        assert done.output["task_status"] == "SUCCEEDED", done.output
        sync = MultiModalConversation.call(
            model="qwen3-asr-flash", messages=[{"role": "user", "content": [{"audio": "file://" + path}]}])
        assert sync.status_code == 200, (sync.code, sync.message)

    data = srv.workdir / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700, oct(data.stat().st_mode)
    modes = _modes(data)
    for name in ("voxscope.db", "queue.db", "secret.key"):
        assert name in modes, sorted(modes)
    uploads = [n for n in modes if n.startswith("uploads" + os.sep) and n.endswith(".wav")]
    assert uploads, sorted(modes)
    loose = {name: oct(mode) for name, mode in modes.items() if mode & 0o077}
    assert not loose, loose
