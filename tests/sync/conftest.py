"""Fixtures of the sync-recognition tests: one audio host and one open server for the package.

The server may fetch from loopback (the audio host is on 127.0.0.1), reads file:// input from the
shared clip folder and one temp folder, and signs upload policies with a known secret so tests can
forge expired ones. The keyed server that refuses private addresses lives in test_auth_private.py.
"""

from __future__ import annotations

import pytest

from tests.conftest import FAST_ENV
from tests.support import AUDIO_DIR, ServerProcess
from tests.sync.helpers import AudioHost

SECRET = "sync-test-secret"


@pytest.fixture(scope="package")
def sync_host():
    host = AudioHost().start()
    yield host
    host.stop()


@pytest.fixture(scope="package")
def file_root(tmp_path_factory):
    return tmp_path_factory.mktemp("file-root")


@pytest.fixture(scope="package")
def sync_server(file_root):
    srv = ServerProcess(env=FAST_ENV, config={"server": {
        "fetch_allow_private": True,
        "file_roots": [str(AUDIO_DIR), str(file_root)],
        "secret_key": SECRET,
        "workers": 0,
    }}).start()
    yield srv
    srv.stop()
