"""The README's quick-start examples run as written against a real server.

Every ```python block of the "Quick start with the official SDK" section is run in its own
interpreter, with the documented address replaced by the test server's and `clip.wav` being a
real 16 kHz mono speech clip; it must exit 0 and print the clip's words (examples that print).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAST_ENV
from tests.support import ServerProcess, clip

README = Path(__file__).resolve().parents[2] / "README.md"
CLIP = "en_beckett"  # 16 kHz mono WAV, "Ever tried. Ever failed. ..."


def _snippets() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start with the official SDK", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


SNIPPETS = _snippets()


def _name(code: str) -> str:
    found = re.search(r"\b(Recognition|TranslationRecognizerRealtime|OmniRealtimeConversation|"
                      r"Transcription|MultiModalConversation|VocabularyService|OpenAI)[(.]", code)
    return found.group(1) if found else "setup"


@pytest.fixture(scope="module")
def srv():
    server = ServerProcess(env=FAST_ENV).start()
    yield server
    server.stop()


def test_every_api_has_an_example():
    names = {_name(code) for code in SNIPPETS}
    assert names >= {"Recognition", "TranslationRecognizerRealtime", "OmniRealtimeConversation",
                     "Transcription", "MultiModalConversation", "VocabularyService", "OpenAI"}, names
    for code in SNIPPETS:  # the HTTP APIs need the HTTP base URL (the first README point)
        if _name(code) in ("Transcription", "MultiModalConversation", "VocabularyService"):
            assert 'base_http_api_url = "http://127.0.0.1:8000/api/v1"' in code, code


@pytest.mark.timeout(300)
@pytest.mark.parametrize("index", range(len(SNIPPETS)), ids=[_name(c) for c in SNIPPETS])
def test_snippet_runs(srv, tmp_path, index):
    code = SNIPPETS[index].replace("127.0.0.1:8000", f"127.0.0.1:{srv.port}")
    shutil.copy(clip(CLIP)["file"], tmp_path / "clip.wav")
    (tmp_path / "snippet.py").write_text(code, encoding="utf-8")
    run = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 0, (code, run.stdout[-2000:], run.stderr[-3000:])
    if "print(" in code:
        assert re.search(r"(?i)fail", run.stdout), (code, run.stdout[-2000:], run.stderr[-2000:])
