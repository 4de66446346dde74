"""Fixtures of the file-transcription tests (the HTTP host serving their audio, `audio_host`, is
in tests/conftest.py): per module a server that may fetch from it (`srv`; modules override it
for other settings) with the SDK pointed at that server (`sdk`)."""

from __future__ import annotations

import pytest

from tests.support import ServerProcess, sdk_at


@pytest.fixture(scope="module")
def srv():
    s = ServerProcess(config={"server": {"fetch_allow_private": True}}).start()
    yield s
    s.stop()


@pytest.fixture()
def sdk(srv):
    with sdk_at(srv):
        yield
