"""Fixtures of the file-transcription tests: one HTTP host serving the audio for the whole session."""

from __future__ import annotations

import pytest

from tests.files.helpers import AudioHost


@pytest.fixture(scope="session")
def audio_host():
    host = AudioHost().start()
    yield host
    host.stop()
