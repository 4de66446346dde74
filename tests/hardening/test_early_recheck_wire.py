"""`early_recheck: language` through a real server (issue 12, Overload), with the official SDK.

A stream that switches language (English, Mandarin, English) at real-time pace: the Mandarin
sentence's first previews are decoded in the carried-over English, which is when the setting asks
for the full-window recheck beside the short final. Whether a language check preview comes back
first depends on the machine's speed, so this asserts what does not: every sentence is finalized,
in order and in its language, and /metrics accounts for early rechecks (each one used is also a
recheck; model-free rules: tests/engine/test_early_recheck.py).
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import FAST_ENV
from tests.hardening.test_final_window_guard import rechecks
from tests.protocols.inference_helpers import check_streamed_run, stream_recognition
from tests.support import ServerProcess, clip_pcm, sdk_at, silence_pcm, trim_silence

CLIPS = ("en_beckett", "zh_paddlespeech_zh", "en_fleurs_000")


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(env=FAST_ENV, config={"server": {
        "max_sessions": 4, "final_window": "short", "early_recheck": "language"}}).start()
    yield srv
    srv.stop()


def early_rechecks(server) -> dict[str, float]:
    """voxscope_early_rechecks_total by outcome (used, dropped); the family must be exposed."""
    text = httpx.get(server.http + "/metrics", timeout=30).text
    assert "# TYPE voxscope_early_rechecks_total counter" in text
    out = {"used": 0.0, "dropped": 0.0}
    for m in re.finditer(r'^voxscope_early_rechecks_total\{[^}]*outcome="(\w+)"[^}]*\} (\S+)$',
                         text, re.M):
        out[m[1]] += float(m[2])
    return out


@pytest.mark.timeout(240)
def test_a_language_switching_stream_is_finalized_in_order_with_early_rechecks(server):
    before, early_before = rechecks(server), early_rechecks(server)
    pcm = silence_pcm(0.5) + b"".join(trim_silence(clip_pcm(c)) + silence_pcm(2.0)
                                      for c in CLIPS)
    with sdk_at(server):
        run = stream_recognition(pcm, chunk=3200, pace=0.1)
    check_streamed_run(run, partials_per_sentence=False)
    finals = run.recorder.finals()
    text = run.recorder.final_text()
    assert len(finals) >= len(CLIPS), run.recorder.summary()
    assert re.search(r"[\u4e00-\u9fff]", text) and re.search(r"[A-Za-z]{4}", text), text
    assert text.lower().index("tried") < text.index("健康") < text.lower().rindex("years"), text
    early = early_rechecks(server)
    used = early["used"] - early_before["used"]
    assert used <= rechecks(server) - before  # a used early recheck is a recheck
