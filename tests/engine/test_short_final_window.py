"""Which short-window requests the backend decodes in the full window, without the model.

Under `final_window: short` a final on less than SHORT_FINAL_FULL_BELOW_S (4 s) of audio is decoded
in Whisper's full 30 s window (on audio plus 1 s Whisper flipped such sentences' first words:
"希望" -> "洗澡"); longer finals and every preview keep the short window; requests that asked for
the full window keep it. Checked on the pure rule and on `WhisperBackend.decode_batch`'s grouping
with the decode stubbed. The real-model check through a server:
tests/hardening/test_final_window_guard.py; the guard skips such finals (already full):
test_final_guard. With the preview check on (`PREVIEW_CHECK_WORDS`, the default since session 8)
the backend decodes them short and the guard checks them after: tests/engine/
test_preview_disagreement.py; here the rule as it stands with the check off.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voxscope.engine.streaming import final_guard
from voxscope.engine.streaming.final_guard import SHORT_FINAL_FULL_BELOW_S, short_final_in_full
from voxscope.engine.types import DecodeOptions, Transcript
from voxscope.engine.whisper_backend import WhisperBackend

SR = 16000
FINAL = DecodeOptions(beam_size=5, full_window=False, word_timestamps=True)
PREVIEW = DecodeOptions(beam_size=1, full_window=False, word_timestamps=False)


@pytest.fixture(autouse=True)
def preview_check_off(monkeypatch):
    monkeypatch.setattr(final_guard, "PREVIEW_CHECK_WORDS", 0)


def test_the_rule():
    assert SHORT_FINAL_FULL_BELOW_S == 4.0  # the measured default (RESULTS.md, session 7)
    assert short_final_in_full(int(3.3 * SR), FINAL)
    assert not short_final_in_full(4 * SR, FINAL)
    assert not short_final_in_full(9 * SR, FINAL)
    assert not short_final_in_full(1 * SR, PREVIEW)


def test_decode_batch_routes_short_finals_to_the_full_window():
    backend = object.__new__(WhisperBackend)  # no model: only the grouping is exercised
    calls: list[tuple[bool, int, list[float]]] = []

    def fake_group(items, full, beam, depth=0, pad=0):
        calls.append((full, beam, [len(a) / SR for a, _ in items]))
        return [Transcript(f"{len(a) / SR:.1f}", [], "en") for a, _ in items]

    backend._decode_group = fake_group  # type: ignore[method-assign]
    items = [(np.zeros(int(s * SR), np.float32), o) for s, o in (
        (3.3, FINAL), (9.0, FINAL), (1.0, PREVIEW),
        (2.0, DecodeOptions(beam_size=5, full_window=True, word_timestamps=True)))]
    out = backend.decode_batch(items)
    assert [t.text for t in out] == ["3.3", "9.0", "1.0", "2.0"]  # results in request order
    assert sorted(calls) == sorted([(True, 5, [3.3, 2.0]), (False, 5, [9.0]), (False, 1, [1.0])])


def test_the_guard_leaves_a_short_final_the_backend_decoded_in_full():
    from tests.engine.test_final_guard import one_sentence

    s, short, rechecks = asyncio.run(one_sentence(False, {"avg_logprob": -0.9}))
    assert not short.options.full_window  # asked short; the backend widens it (test above)
    assert rechecks == [] and s.rec.stats.final_rechecks == 0  # no second full-window decode
    assert [r.text for r in s.finals] == ["Hello their."]


def test_the_short_setting_reaches_the_decode():
    from tests.engine.test_recognizer_driver import Session, silence, speech
    from voxscope.config import load_settings

    async def main() -> set[bool]:
        s = Session(**load_settings(final_window="short").stream_options())
        await s.feed(np.concatenate([silence(0.512), speech(1.504), silence(0.4)]))
        windows = {r.options.full_window for r in s.sched.requests if r.final}
        s.rec.close()
        return windows

    # short since session 9 (session 8's lost final: tests/hardening/test_sdk_start_race.py)
    assert load_settings().final_window == "short"
    assert asyncio.run(main()) == {False}  # asked short; the backend widens finals under 4 s
